"""A study's results as one long table, paired differences, curves and a Markdown section.

Every number is read from the jobs' own files: a distillation's ``run_summary.json`` (final and
best set, the random real subset) and ``metrics.jsonl`` (the accuracy curve), an evaluation's
``eval.json`` (per architecture, with DD-Ranking's IOR/HLR/LRS). One row per value::

    study, arm, <grid options>, seed, set, source, architecture, metric, iteration, value

(accuracies in percent; ``set``: final, best, random_subset or curve; ``source``: distill or
eval). Paired differences: each arm against the reference arm, seed by seed at the same grid
point, with a 95% t-interval (:func:`.stats.paired_interval`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..io.atomic import atomic_path, atomic_write_json, atomic_write_text, ensure_directory
from ..io.metric_names import EVALUATION
from .jobs import Job
from .runner import Study
from .state import is_done, read_json
from .stats import mean, paired_interval, pstdev

KEY_COLUMNS = ("set", "source", "architecture", "metric")


@dataclass(frozen=True)
class Report:
    study: str
    grid: tuple[str, ...]
    rows: list[dict]
    paired: list[dict]
    reference: str

    def columns(self) -> list[str]:
        return ["study", "arm", *self.grid, "seed", *KEY_COLUMNS, "iteration", "value"]


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def distill_values(job: Job) -> Iterable[tuple[str, str, str, str, int | None, float]]:
    """(set, source, architecture, metric, iteration, value) of one finished distillation."""
    summary = read_json(job.run_dir / "run_summary.json") or {}
    model = summary.get("model", job.options.get("model"))
    for set_name in ("final", "best", "random_subset"):
        result = summary.get(set_name)
        if result:
            yield set_name, "distill", model, "accuracy", result.get("iteration"), _percent(result["mean"])
    try:
        lines = (job.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        row = json.loads(line)
        if EVALUATION.mean in row and "event" not in row:
            yield "curve", "distill", model, "accuracy", row["iteration"], _percent(row[EVALUATION.mean])


def eval_values(job: Job) -> Iterable[tuple[str, str, str, str, int | None, float]]:
    """The same for one finished evaluation: accuracy per architecture, the random subset's, and
    DD-Ranking's IOR, HLR, LRS where they could be computed."""
    record = read_json(job.run_dir / "eval.json") or {}
    set_name = job.labels[0].set if job.labels else "final"
    iteration = (record.get("protocol") or {}).get("iteration")
    for row in record.get("rows", []):
        for kind, metric in (("distilled", "accuracy"), ("random_subset", "random_subset_accuracy")):
            if row.get(kind):
                yield set_name, "eval", row["model"], metric, iteration, _percent(row[kind]["mean"])
    for row in (record.get("dd_ranking") or {}).get("rows", []):
        for metric in ("ior", "hlr", "lrs"):
            if row.get(metric):
                yield set_name, "eval", row["model"], metric, iteration, _percent(row[metric]["mean"])


def collect(study: Study) -> Report:
    """The long table of every finished job of ``study``, and the paired differences."""
    spec = study.spec
    grid = tuple(dict.fromkeys(k for g in spec.grids for k in g.values if k != "seed"))
    rows = []
    for job in study.jobs():
        if job.kind == "experts" or not is_done(job):
            continue
        values = list((distill_values if job.kind == "distill" else eval_values)(job))
        for label in job.labels:
            base = {"study": spec.name, "arm": label.arm, **{k: label.point.get(k) for k in grid},
                    "seed": label.point.get("seed", job.options.get("seed"))}
            for set_name, source, architecture, metric, iteration, value in values:
                rows.append({**base, "set": set_name, "source": source, "architecture": architecture,
                             "metric": metric, "iteration": iteration, "value": value})
    reference = spec.report.reference or next(iter(spec.arms))
    return Report(spec.name, grid, rows, paired_differences(rows, grid, reference), reference)


def paired_differences(rows: Sequence[dict], grid: Sequence[str], reference: str) -> list[dict]:
    """Each arm minus ``reference``, seed by seed, per grid point, set, source, architecture and
    metric (curves left out): mean difference and 95% t-interval in points, and both arms'
    per-seed values."""
    table: dict[tuple, dict[str, dict[Any, float]]] = {}
    for row in rows:
        if row["set"] in ("curve", "random_subset") or row["metric"] == "random_subset_accuracy":
            continue  # a curve is not one number; the random subset is the same images in every arm
        group = (*(row[k] for k in grid), *(row[k] for k in KEY_COLUMNS))
        table.setdefault(group, {}).setdefault(row["arm"], {})[row["seed"]] = row["value"]
    out = []
    for group, arms in table.items():
        base = arms.get(reference)
        if not base:
            continue
        for arm, values in arms.items():
            seeds = sorted(set(values) & set(base), key=str)
            if arm == reference or not seeds:
                continue
            interval = paired_interval([values[s] - base[s] for s in seeds])
            out.append({**dict(zip((*grid, *KEY_COLUMNS), group)), "arm": arm, "reference": reference,
                        "seeds": seeds, "difference": interval["mean"], "low": interval["low"],
                        "high": interval["high"], "n": interval["n"],
                        "per_seed": {str(s): [base[s], values[s]] for s in seeds}})
    return out


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=report.columns(), lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(row)
    return buffer.getvalue()


def _summary_rows(report: Report) -> list[tuple]:
    """(grid values, set, source, architecture, arm, n, mean, std) of every accuracy (no curves)."""
    groups: dict[tuple, list[float]] = {}
    for row in report.rows:
        if row["set"] != "curve" and row["metric"] == "accuracy":
            key = (tuple(row[k] for k in report.grid), row["set"], row["source"], row["architecture"], row["arm"])
            groups.setdefault(key, []).append(row["value"])
    return [(*key, len(v), mean(v), pstdev(v)) for key, v in groups.items()]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def to_markdown(report: Report, title: str | None = None) -> str:
    """One Markdown section: accuracy per arm (mean and std over seeds) and the paired difference
    to the reference arm."""
    paired = {(tuple(p[k] for k in report.grid), p["set"], p["source"], p["architecture"], p["arm"]): p
              for p in report.paired if p["metric"] == "accuracy"}
    lines = [f"## {title or 'Study ' + report.study}", "",
             f"Accuracy (%) over seeds; paired difference to `{report.reference}` in points with its 95% "
             f"t-interval.", "",
             "| " + " | ".join([*report.grid, "set", "source", "architecture", "arm", "seeds", "accuracy",
                                 f"vs {report.reference}"]) + " |",
             "|" + "---|" * (len(report.grid) + 7)]
    for *key, n, m, s in sorted(_summary_rows(report), key=lambda r: tuple(map(str, r[:5]))):
        grid, set_name, source, architecture, arm = key
        p = paired.get(tuple(key))
        versus = "" if p is None else (f"{_fmt(p['difference'])} [{_fmt(p['low'])}, {_fmt(p['high'])}]"
                                       if p["low"] is not None else _fmt(p["difference"]))
        spread = f" ± {s:.2f}" if n > 1 else ""
        lines.append("| " + " | ".join([*map(str, grid), set_name, source, architecture, arm, str(n),
                                         f"{m:.2f}{spread}", versus]) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(report: Report, path: Path) -> None:
    """Accuracy against iteration, one panel per grid point, one line per arm (mean over seeds,
    band: one std), the random real subset dashed."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted({tuple(r[k] for k in report.grid) for r in report.rows}, key=str) or [()]
    cols = min(3, len(points))
    fig, axes = plt.subplots(math.ceil(len(points) / cols), cols, figsize=(5 * cols, 3.4 * math.ceil(len(points) / cols)),
                             squeeze=False)
    for ax in axes.flat[len(points):]:
        ax.axis("off")
    for ax, point in zip(axes.flat, points):
        here = [r for r in report.rows if tuple(r[k] for k in report.grid) == point and r["source"] == "distill"]
        for arm in dict.fromkeys(r["arm"] for r in here):
            curve: dict[int, list[float]] = {}
            for r in here:
                if r["arm"] == arm and r["set"] == "curve":
                    curve.setdefault(r["iteration"], []).append(r["value"])
            xs = sorted(curve)
            ms, ss = [mean(curve[x]) for x in xs], [pstdev(curve[x]) for x in xs]
            ax.plot(xs, ms, "o-", ms=3, lw=1.3, label=arm)
            ax.fill_between(xs, [m - s for m, s in zip(ms, ss)], [m + s for m, s in zip(ms, ss)], alpha=0.18)
        baseline = [r["value"] for r in here if r["set"] == "random_subset"]
        if baseline:
            ax.axhline(mean(baseline), ls="--", lw=0.9, color="black", label="random real subset")
        ax.set_title(", ".join(f"{k}={v}" for k, v in zip(report.grid, point)) or report.study, fontsize=9)
        ax.set_xlabel("distillation iteration")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_report(study: Study, out: Path | None = None) -> dict[str, Path]:
    """Write ``results.csv``, ``results.jsonl``, ``paired.json``, ``curves.png`` and ``report.md``
    into ``out`` (default ``STUDY/report``); return their paths."""
    report = collect(study)
    out = ensure_directory(out or study.folder / "report")
    paths = {name: out / name for name in ("results.csv", "results.jsonl", "paired.json", "curves.png", "report.md")}
    atomic_write_text(paths["results.csv"], to_csv(report))
    atomic_write_text(paths["results.jsonl"], "".join(json.dumps(row) + "\n" for row in report.rows))
    atomic_write_json(paths["paired.json"], {"study": report.study, "reference": report.reference,
                                             "paired": report.paired})
    plot_curves(report, paths["curves.png"])
    atomic_write_text(paths["report.md"], to_markdown(report))
    return paths
