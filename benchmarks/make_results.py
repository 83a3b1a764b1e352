"""Generate benchmarks/RESULTS.md from the JSON files in benchmarks/results/.

Each section states the exact command, the machine, the date and the commit that produced it.
Hand-written analysis lives in benchmarks/NOTES.md and is appended verbatim.

Usage: ``python -m benchmarks.make_results [--results DIR] [--output FILE]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from mct_plugin.harness.study.stats import paired_interval

HERE = Path(__file__).resolve().parent
PUBLIC_EXPERT_EPOCH_S = 146.0  # public MTT buffer.py on this machine type (issue reference)
PUBLIC_DISTILL = {1: (0.84, 2.4), 10: (18.5, 8.9)}  # public distill.py: s/it and peak RSS (GB), syn_steps 20



def as_module(command: str) -> str:
    """``python benchmarks/x.py ARGS`` (as results recorded before the scripts became a package) ->
    ``python -m benchmarks.x ARGS``, the command that reruns it today."""
    return re.sub(r"^python benchmarks/([a-z_]+)\.py", r"python -m benchmarks.\1", command)

def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def pm(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def provenance(data: dict) -> list[str]:
    """Command, machine, date and commit; per part when the parts were run separately (``--only``)."""
    runs = data.get("parts") or {"": data}
    lines = []
    for part, run in runs.items():
        m = run.get("machine", {})
        label = f"`{part}`: " if part else ""
        lines += [f"- {label}command: `{as_module(run.get('command', '?'))}`",
                  f"  machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GiB, "
                  f"torch {m.get('torch', '?')} ({m.get('torch_threads', '?')} threads), Python {m.get('python', '?')}; "
                  f"date: {run.get('date', '?')}; commit: `{run.get('commit', '?')}`"]
    return lines + [""]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def speed_section(data: dict) -> list[str]:
    out = ["## Speed and memory (`speed.py`)", ""] + provenance(data)
    if data.get("experts"):
        out += ["### Expert training: one Fashion-MNIST epoch (train pass with crop_scale_rotate + test pass)", ""]
        rows = []
        for r in data["experts"]:
            ratio = r["epoch_s"] / PUBLIC_EXPERT_EPOCH_S if r["model"] == "ConvNet" else None
            rows.append([r["model"], "on" if r["allocator_tuning"] else "off", f"{r['epoch_s']:.1f}",
                         f"{r['train_s']:.1f}", f"{r['test_s']:.1f}", f"{r['images_per_s']:.0f}",
                         "-" if ratio is None else f"{ratio:.2f}x"])
        out += table(["model", "allocator tuning", "epoch (s)", "train pass (s)", "test pass (s)", "train images/s",
                      f"vs public buffer.py ({PUBLIC_EXPERT_EPOCH_S:.0f} s)"], rows)
    if data.get("distill"):
        out += ["### Distillation: seconds per iteration and peak RSS (whole `dd-harness distill` process)", ""]
        rows = []
        for r in data["distill"]:
            ref = PUBLIC_DISTILL.get(r["ipc"]) if r["syn_steps"] == 20 and r["model"] == "ConvNet" else None
            versus = (f"{r['seconds_per_iteration'] / ref[0]:.2f}x time, {r['peak_rss_mb'] / 1024 / ref[1]:.2f}x memory"
                      if ref and r["gradient_mode"] == "unrolled" else "-")
            rows.append([r["matcher"], r["gradient_mode"], r["model"], str(r["ipc"]), str(r["syn_steps"]),
                         f"{r['seconds_per_iteration']:.2f}", f"{r['peak_rss_mb'] / 1024:.2f}", versus])
        out += table(["matcher", "gradient mode", "model", "ipc", "syn_steps", "s / iteration", "peak RSS (GB)",
                      "vs the issue's public distill.py reference (0.84 s, 2.4 GB at ipc 1; 18.5 s, 8.9 GB at ipc 10; see the side-by-side table below)"], rows)
    out += gradient_modes_section(data)
    if data.get("allocator"):
        out += ["### Allocator tuning: time against memory (unrolled MTT distillation)", ""]
        rows = [[r["model"], str(r["ipc"]), str(r["syn_steps"]), "on" if r["allocator_tuning"] else "off",
                 f"{r['seconds_per_iteration']:.2f}", f"{r['peak_rss_mb'] / 1024:.2f}"] for r in data["allocator"]]
        out += table(["model", "ipc", "syn_steps", "allocator tuning", "s / iteration", "peak RSS (GB)"], rows)
    if data.get("eval"):
        out += ["### Evaluation: training and testing `num_eval` networks", ""]
        rows = [[r["model"], str(r["ipc"]), str(r["epochs"]), str(r["num_eval"]), r["how"], f"{r['seconds']:.1f}",
                 pm(r["mean"], r["std"])] for r in data["eval"]]
        out += table(["model", "ipc", "epochs", "networks", "how", "seconds", "accuracy (%)"], rows)
    return out


def gradient_modes_section(data: dict) -> list[str]:
    """One row per (model, ipc, syn_steps): time and peak RSS of the three gradient modes."""
    from . import speed

    cells = speed.gradient_cells(data)
    if not cells:
        return []
    out = ["### Gradient modes: time and memory", "",
           "MTT on random-walk ConvNet/ResNet-18 trajectories (Fashion-MNIST shapes), DSA on, batch = all images; "
           "s / it: mean over the timed iterations after a warm-up one, each mode in a fresh process, all cells of a "
           "part in one run with nothing else running; peak RSS of the whole process. `-` where a part ran "
           "memory-only (one iteration, while the CPU was shared: no time reported), `not run` where a mode was left "
           "out of a part (`--modes`). Unrolled estimate: the "
           "automatic choice's measured graph of (syn_steps + 1) steps; a cell whose estimate x "
           f"{speed.ESTIMATE_SLACK} exceeds {speed.MACHINE_SHARE:.0%} of the machine's {speed.MACHINE_MEMORY_GB} GB "
           "is skipped.", ""]
    rows = []

    def seconds(row):
        return row.get("seconds_per_iteration") if row else None

    def peak(row):
        return row["peak_rss_mb"] / 1024 if row and "peak_rss_mb" in row else None

    def cell(value, reference, unit="", row=True):
        if not row:
            return "not run"
        if value is None:
            return "-"
        ratio = f" ({value / reference:.2f}x)" if reference else ""
        return f"{value:.2f}{unit}{ratio}"

    for (model, ipc, steps), modes in cells.items():
        u, c, f = (modes.get(m) for m in speed.GRADIENT_MODES)
        u_time, u_peak = seconds(u), peak(u)
        skipped = u is not None and "skipped" in u
        rows.append([model, str(ipc), str(steps), f"{(u or c or f)['unrolled_estimate_gb']:.2f}",
                     "skipped" if skipped else cell(u_time, None, row=u), cell(seconds(c), u_time, row=c),
                     cell(seconds(f), u_time, row=f), "does not fit" if skipped else cell(u_peak, None, row=u),
                     cell(peak(c), u_peak, row=c), cell(peak(f), u_peak, row=f)])
    out += table(["model", "ipc", "syn_steps", "unrolled estimate (GB)", "unrolled s / it",
                  "checkpointed s / it (x unrolled)", "first-order s / it (x unrolled)", "unrolled peak (GB)",
                  "checkpointed peak (GB) (x unrolled)", "first-order peak (GB) (x unrolled)"], rows)
    return out + ["![peak memory against syn_steps per gradient mode](results/gradient_memory.png)", ""]


def storage_section(data: dict) -> list[str]:
    out = ["## Storage (`storage.py`)", ""] + provenance(data)
    sizes = data.get("sizes")
    if sizes:
        out += [f"### Sizes and converter throughput: {sizes['experts']} {sizes['model']} experts x "
                f"{sizes['epochs'] + 1} checkpoints, {sizes['mtt_bytes'] / 1e6:.0f} MB of MTT buffers in "
                f"{sizes['files']} files", ""]
        rows = [[str(r["waypoints"]), r["dtype"], f"{r['mct_bytes'] / 1e6:.2f}", f"{100 * r['ratio']:.2f}%",
                 f"{100 * r['expected_ratio_P_over_E1']:.2f}%", f"{r['seconds']:.1f}", f"{r['mb_per_s']:.0f}",
                 f"{r['peak_rss_mb']:.0f}", f"{r['peak_rss_mb'] - r.get('baseline_rss_mb', 0):.0f}",
                 f"{r['largest_source_mb']:.0f}"] for r in sizes["rows"]]
        out += table(["P", "dtype", "MCT (MB)", "MCT / MTT", "P/(E+1) in float32", "seconds", "MB/s", "peak RSS (MB)",
                      "above imports (MB)", "largest source file (MB)"], rows)
        if "baseline_rss_mb" in sizes["rows"][0]:
            out += [f"The interpreter with the converter's imports alone peaks at "
                    f"{sizes['rows'][0]['baseline_rss_mb']:.0f} MB; what conversion adds on top stays near the "
                    "size of one source file (mmap loading, one file at a time), not of the whole directory.", ""]
    acc = data.get("accuracy")
    if acc:
        out += [f"### Does compact storage cost accuracy? MCT, ipc={acc['ipc']}, {acc['iterations']} iterations from "
                f"the `{acc['profile']}` convergence experts, {acc['num_eval']} networks x {acc['epoch_eval_train']} epochs",
                ""]
        rows = [[str(r["waypoints"]), r["dtype"], f"{r['bytes'] / 1e6:.3f}", f"{100 * r['bytes'] / acc['mtt_bytes']:.2f}%",
                 pm(r["accuracy_mean"], r["accuracy_std"])] for r in acc["rows"]]
        out += table(["P", "dtype", "MB", "of MTT", "accuracy (%)"], rows)
    return out


STUDIES = "studies"
"""Under the results folder: one folder per study file, ``studies/NAME/`` (``dd-harness study report
benchmarks/studies/NAME.yaml --out benchmarks/results/studies/NAME``)."""


def study_section(folder: Path, results: Path) -> list[str]:
    """The section of one study's report (any study file): its ``report.md`` under a heading that
    names the file and the command, its curves, and the paired differences' per-seed values."""
    name = folder.name
    body = (folder / "report.md").read_text(encoding="utf-8").strip().splitlines()
    if body and body[0].startswith("#"):
        body = body[1:]
    out = [f"## Study `{name}` (`benchmarks/studies/{name}.yaml`)", "",
           f"- command: `dd-harness study run benchmarks/studies/{name}.yaml`, then `dd-harness study report "
           f"benchmarks/studies/{name}.yaml --out benchmarks/results/{STUDIES}/{name}`", *body, ""]
    paired = folder / "paired.json"
    if paired.is_file():
        known = {"arm", "reference", "set", "source", "architecture", "metric", "seeds", "difference", "low", "high",
                 "n", "per_seed"}
        rows = [[", ".join(f"{k}={v}" for k, v in p.items() if k not in known) or "-", p["arm"], p["set"], p["source"],
                 p["architecture"], ", ".join(f"{seed}: {value - base:+.2f}" for seed, (base, value)
                                              in p["per_seed"].items())]
                for p in json.loads(paired.read_text())["paired"] if p["metric"] == "accuracy"]
        if rows:
            out += ["Paired differences seed by seed (points, arm minus the reference arm):", ""]
            out += table(["grid point", "arm", "set", "source", "architecture", "per seed"], rows)
    if (folder / "curves.png").is_file():
        out += [f"![accuracy against iteration]({(folder / 'curves.png').relative_to(results.parent).as_posix()})", ""]
    return out


def vs_public_section(data: dict) -> list[str]:
    out = ["## Against the public MTT `distill.py`, measured side by side (`vs_public.py`)", ""] + provenance(data)
    out += ["Both programs alternately on the same random-walk ConvNet buffer (Fashion-MNIST shapes), "
            "MTT with the exact unrolled gradient, syn_steps and expert_epochs as below, DSA on, "
            "median over all timed iterations of all runs (range in brackets); peak RSS of the whole process.", ""]
    rows = []
    for r in sorted((v for k, v in data.items() if re.fullmatch(r"ipc\d+", k)), key=lambda r: r["ipc"]):
        ours, public = r["ours"], r["public"]
        rows.append([str(r["ipc"]), str(r["syn_steps"]), str(r["expert_epochs"]),
                     f"{public['median_s']:.2f} ({public['min_s']:.2f}-{public['max_s']:.2f})",
                     f"{ours['median_s']:.2f} ({ours['min_s']:.2f}-{ours['max_s']:.2f})",
                     f"{r['time_ratio']:.2f}x", f"{public['peak_rss_mb'] / 1024:.2f}", f"{ours['peak_rss_mb'] / 1024:.2f}",
                     f"{r['memory_ratio']:.2f}x", f"{public['iterations_timed']} / {ours['iterations_timed']}"])
    out += table(["ipc", "syn_steps", "expert_epochs", "public s / it (range)", "ours s / it (range)",
                  "time ours / public", "public peak RSS (GB)", "ours peak RSS (GB)", "memory ours / public",
                  "iterations timed (public / ours)"], rows)
    out += vs_public_memory_table(data)
    experts = data.get("experts")
    if experts:
        out += [f"One epoch of expert training ({experts['model']}, all 60,000 images, batch {experts['batch_train']}, "
                "then the 10,000-image test pass); median of the runs:", ""]
        public = experts["public (dsa)"]["epoch_s"]
        rows = [[name, str(r["runs"]), f"{r['train_s']:.1f}", f"{r['test_s']:.1f}", f"{r['epoch_s']:.1f}",
                 f"{r['epoch_s'] / public:.2f}x"]
                for name, r in sorted(experts.items(), key=lambda item: not item[0].startswith("public"))
                if isinstance(r, dict)]
        out += table(["program (augmentation)", "runs", "train pass (s)", "test pass (s)", "epoch (s)", "vs public"],
                     rows)
    return out


def vs_public_memory_table(data: dict) -> list[str]:
    """Peak memory of every gradient mode next to the public ``distill.py`` (``--memory-only`` parts)."""
    memory = sorted((v for k, v in data.items() if re.fullmatch(r"ipc\d+-s\d+-memory", k)),
                    key=lambda r: (r["ipc"], r["syn_steps"]))
    if not memory:
        return []
    modes = ["ours"] + sorted({k for r in memory for k in r if k.startswith("ours ")})

    def cell(r: dict, name: str) -> str:
        program = r.get(name)
        if program is None:
            return "-"
        if "skipped" in program:
            return "does not fit"
        ratio = None if name == "public" else \
            r.get("memory_ratio" + (f"_{name.partition(' ')[2]}" if " " in name else ""))
        return f"{program['peak_rss_mb'] / 1024:.2f}" + (f" ({ratio:.2f}x)" if ratio is not None else "")

    out = ["Peak memory only (`--memory-only`: one iteration per program, measured while the CPU was shared, which "
           "does not change memory; `does not fit`: the graph of every step would need more than this machine has, "
           "so neither the public code nor `unrolled` was started). In brackets: x the public code.", ""]
    rows = [[str(r["ipc"]), str(r["syn_steps"]) + (" *" if r.get("restored_from_log") else ""), cell(r, "public")]
            + [cell(r, m) for m in modes] for r in memory]
    headers = ["ipc", "syn_steps", "public distill.py (GB)"] + \
        [("ours unrolled" if m == "ours" else m) + " (GB)" for m in modes]
    restored = ["\\* the row as the run printed it: a later memory-only part of an earlier version of the script "
                "dropped it from the JSON (fixed since), so it was restored from the run's log.", ""] \
        if any(r.get("restored_from_log") for r in memory) else []
    return out + table(headers, rows) + restored


def _interval(d: dict | None) -> str:
    if not d or d.get("low") is None:
        return "-"
    return f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def mct_study_section(data: dict) -> list[str]:
    study = data["study"]
    out = ["## The MCT study (`mct_study.py`)", ""] + provenance(data)
    out += ["The runs themselves are made by `python -m benchmarks.mct_study --ipc 1` and `--ipc 10` (each "
            "repeated until complete: a part starts no new run after `--hours`, and interrupted runs resume from "
            "their checkpoints); the command above wrote this report from the finished runs.", ""]
    experts = data["experts"]
    finals = experts["final_test_acc"]
    out += [f"Fashion-MNIST, {study['model']}; {study['num_experts']} experts x {study['train_epochs']} epochs on a "
            f"{study['expert_subset']:,}-image class-balanced subset (final test accuracy "
            f"{100 * min(finals):.1f}-{100 * max(finals):.1f}%, {experts['seconds'] / 60:.0f} min); seeds "
            f"{study['seeds']}; every evaluation point trains {study['num_eval']} networks x "
            f"{study['epoch_eval_train']} epochs (the public protocol trains 1000: reduced for the CPU). Final and "
            "best: mean over seeds of each seed's final / best evaluation; AUC: the mean accuracy over the run "
            "(trapezoids); largest drop: the largest fall between two consecutive evaluations over all seeds; paired "
            "difference to MTT: per seed (same initial images, same evaluation networks), mean and 95% t-interval "
            "over seeds; s / it: two runs side by side with one thread each.", ""]
    for ipc, analysis in data["analysis"].items():
        plan = study["plans"][ipc]
        random = data["random_subset"].get(ipc)
        out += [f"### ipc={ipc}: {plan['iterations']} iterations, syn_steps {plan['syn_steps']}, expert_epochs "
                f"{plan['expert_epochs']}, max_start_epoch {plan['max_start_epoch']}, lr_img {plan['lr_img']:g}, "
                f"lr_lr {plan['lr_lr']:g}, evaluated every {plan['eval_every']}"
                + (f"; random real subset {pct(random['mean'])} ± {100 * random['std']:.2f}" if random else ""), ""]
        rows = []
        for arm, a in analysis["arms"].items():
            paired = a.get("paired_vs_mtt", {})
            reached = a.get("iterations_to_mtt_final")
            reference = arm == "mtt"  # the paired differences are taken against this arm
            rows.append([arm, a["label"], str(len(a["seeds"])), pm(a["final_mean"], a["final_std"]), pct(a["best_mean"]),
                         pct(a["auc_mean"]), "never" if reached is None else str(reached),
                         f"{100 * a['largest_drop']:.2f}", "reference" if reference else _interval(paired.get("final")),
                         "reference" if reference else _interval(paired.get("auc")),
                         f"{a['seconds_per_iteration']:.2f}"])
        out += table(["arm", "configuration", "seeds", "final (%)", "best (%)", "AUC (%)",
                      "iterations to MTT's final", "largest drop (pts)", "final - MTT, 95% CI (pts)",
                      "AUC - MTT, 95% CI (pts)", "s / it"], rows)
    out += [f"![accuracy vs iteration per arm](results/mct_study_{study['name']}.png)", ""]
    return out


def checkpointed_study_section(data: dict) -> list[str]:
    """Issue 17's accuracy check: each default arm with the unrolled and the checkpointed exact
    gradient, paired per seed (same experts, initial images and evaluation networks)."""
    study = data["study"]
    out = ["## The exact gradient at constant memory: accuracy (`mct_study.py --study checkpointed`)", ""]
    out += provenance(data)
    for ipc, analysis in data["analysis"].items():
        plan = study["plans"][ipc]
        out += [f"Fashion-MNIST, {study['model']}, the MCT study's experts and protocol ({study['num_experts']} experts "
                f"x {study['train_epochs']} epochs; {study['num_eval']} networks x {study['epoch_eval_train']} epochs "
                f"per evaluation), ipc={ipc}, {plan['iterations']} iterations, syn_steps {plan['syn_steps']}. Both "
                "modes compute the same gradient (equal to <= 1e-5 relative in the tests); runs of one seed differ "
                "only by floating-point summation order, which a 300-iteration run amplifies. Final accuracy per "
                "seed; difference = checkpointed - unrolled, mean and 95% paired t-interval; s / it: two runs side "
                "by side with one thread each.", ""]
        arms = analysis["arms"]
        rows = []
        for arm, stats in arms.items():
            unrolled = arm.removesuffix("-ckpt")
            pairing = stats.get("paired_vs_" + unrolled, {})
            if "per_seed" not in pairing:  # only the checkpointed arms are paired with their unrolled twin
                continue
            reference = arms[unrolled]
            per_seed = ", ".join(f"{100 * u:.2f} / {100 * c:.2f}" for _, (u, c) in sorted(pairing["per_seed"].items()))
            rows.append([stats["label"], str(len(pairing["per_seed"])), per_seed, pm(reference["final_mean"],
                         reference["final_std"]), pm(stats["final_mean"], stats["final_std"]),
                         _interval(pairing["final"]),
                         f"{reference['seconds_per_iteration']:.2f} / {stats['seconds_per_iteration']:.2f}"])
        out += table(["arm (checkpointed)", "seeds", "per seed: unrolled / checkpointed (%)", "unrolled final (%)",
                      "checkpointed final (%)", "difference, 95% CI (pts)", "s / it unrolled / checkpointed"], rows)
    out += [f"![accuracy vs iteration per arm](results/mct_study_{study['name']}.png)", ""]
    return out


def sweep_section(data: dict) -> list[str]:
    """Issue 17, item 6: lr_img x lr_lr (and the public ipc1 recipe's shape) for the first-order and
    the exact gradient; the best configuration of each gradient, and how far apart they are."""
    study = data["study"]
    out = ["## A fair word on the first-order gradient: the learning-rate sweep (`mct_study.py --study sweep`)", ""]
    out += provenance(data)
    for ipc, analysis in data["analysis"].items():
        plan = study["plans"][ipc]
        finals: dict[str, dict[int, float]] = {}
        for r in data["runs"][ipc]:
            if not r.get("diverged") and r["evals"]:
                finals.setdefault(r["arm"], {})[r["seed"]] = r["evals"][-1]["mean"]
        out += [f"Fashion-MNIST, {study['model']}, the MCT study's experts and protocol ({study['num_experts']} "
                f"experts x {study['train_epochs']} epochs; {study['num_eval']} networks x {study['epoch_eval_train']} "
                f"epochs per evaluation), ipc={ipc}, MCT P=4 with the public smoothing, {plan['iterations']} "
                f"iterations, seeds {', '.join(map(str, study['seeds']))} per configuration. Unless a row says "
                f"otherwise: syn_steps {plan['syn_steps']}, expert_epochs {plan['expert_epochs']}, max_start_epoch "
                f"{plan['max_start_epoch']}. Final: mean +- std over seeds of each run's last evaluation; best "
                "evaluated: mean over seeds of each run's highest evaluation (the papers' number, optimistic); a "
                "diverged run (non-finite loss) is counted, not averaged.", ""]
        rows, best, by_setting = [], {}, {}
        arms = sorted(analysis["arms"].items(), key=lambda kv: (kv[1]["gradient_mode"], -kv[1].get("final_mean", -1)))
        for arm, a in arms:
            o, gradient = a["overrides"], a["gradient_mode"]
            shape = ", ".join(f"{k} {o[k]:g}" for k in ("syn_steps", "expert_epochs", "max_start_epoch") if k in o)
            diverged = a.get("diverged_seeds", [])
            per_seed = ", ".join(f"{100 * v:.2f}" for _, v in sorted(finals.get(arm, {}).items()))
            setting = (f"{o.get('lr_img', plan['lr_img']):g}", f"{o.get('lr_lr', plan['lr_lr']):g}", shape or "-")
            by_setting.setdefault(setting, {})[gradient] = arm
            rows.append([gradient, *setting, per_seed or "-",
                         pm(a["final_mean"], a["final_std"]) if "final_mean" in a else "diverged",
                         pct(a["best_mean"]) if "best_mean" in a else "-",
                         ", ".join(map(str, diverged)) or "none"])
            if "final_mean" in a and not diverged and a["final_mean"] > best.get(gradient, ("", -1.0))[1]:
                best[gradient] = (arm, a["final_mean"])
        out += table(["gradient", "lr_img", "lr_lr", "recipe shape", "final per seed (%)", "final (%)",
                      "best evaluated (%)", "diverged seeds"], rows)
        for gradient, (arm, final) in sorted(best.items()):
            out += [f"- best {gradient} configuration (by final accuracy, no run diverged): "
                    f"{analysis['arms'][arm]['label']}, final {pct(final)}"]
        if {"first-order", "unrolled"} <= set(best):
            exact, first = finals[best["unrolled"][0]], finals[best["first-order"][0]]
            common = sorted(set(exact) & set(first))
            diff = paired_interval([exact[s] - first[s] for s in common])
            out += [f"- best exact - best first-order, paired per seed: {_interval(diff)} pts over {len(common)} seeds "
                    "(each the best of several configurations on the same few seeds: both are optimistic, the "
                    "difference much less so)"]
        out += _same_setting_lines(by_setting, finals)
        out += [""]
    return out


def _same_setting_lines(by_setting: dict, finals: dict) -> list[str]:
    """exact - first-order at each setting both gradients ran, paired per seed (the sweep's fair comparison)."""
    parts, ahead, pairs = [], 0, 0
    for (lr_img, lr_lr, shape), arms in sorted(by_setting.items(), key=lambda kv: (kv[0][2], float(kv[0][0]),
                                                                                   float(kv[0][1]))):
        if not {"first-order", "unrolled"} <= set(arms):
            continue
        exact, first = finals.get(arms["unrolled"], {}), finals.get(arms["first-order"], {})
        diffs = [exact[s] - first[s] for s in sorted(set(exact) & set(first))]
        if not diffs:
            continue
        ahead, pairs = ahead + sum(d > 0 for d in diffs), pairs + len(diffs)
        where = f"lr_img {lr_img}, lr_lr {lr_lr}" + ("" if shape == "-" else ", the public recipe's shape")
        parts.append(f"{where}: {', '.join(f'{100 * d:+.2f}' for d in diffs)}")
    if not parts:
        return []
    return [f"- exact - first-order at the same settings, per seed (pts): {'; '.join(parts)}; the exact gradient is "
            f"ahead in {ahead} of {pairs} paired runs"]


def vs_public_accuracy_section(data: dict) -> list[str]:
    part = data.get("accuracy")
    if not part:
        return []
    run = data.get("parts", {}).get("accuracy", data)
    out = ["## Our MCT and MTT against the public code: whole distillations side by side (`vs_public.py --accuracy`)",
           ""] + provenance({"parts": {"accuracy": run}})
    st = part["settings"]
    out += [f"The MCT study's experts ({part['model']}), ipc={st['ipc']}, syn_steps {st['syn_steps']}, expert_epochs "
            f"{st['expert_epochs']}, max_start_epoch {st['max_start_epoch']}, lr_img {st['lr_img']:g}, lr_lr "
            f"{st['lr_lr']:g}, {st['iterations']} iterations; every program's sets evaluated by our protocol "
            f"({st['num_eval']} networks x {st['epoch_eval_train']} epochs at every {st['eval_every']} iterations). "
            f"{part['seeds']} runs per program (the public code cannot be seeded: its runs are repetitions).", ""]
    rows = []
    for method, summary in part["summary"].items():
        diff = summary["ours_minus_public"]
        for program in ("public", "ours"):
            s = summary[program]
            rows.append([method.upper(), program, pm(s["final_mean"], s["final_std"]), pct(s["best_mean"]),
                         f"{s['seconds_per_iteration']:.2f}", f"{s['peak_rss_mb'] / 1024:.2f}",
                         (f"{100 * diff['difference']:+.2f} [{100 * diff['low']:+.2f}, {100 * diff['high']:+.2f}]"
                          if program == "ours" else "")])
    out += table(["method", "program", "final (%)", "best (%)", "s / it (median)", "peak RSS (GB)",
                  "ours - public, 95% Welch interval (pts)"], rows)
    out += ["![side by side](results/vs_public_accuracy.png)", ""]
    return out


def gpu_check_section(data: dict) -> list[str]:
    out = ["## GPU readiness (`gpu_check.sh`)", ""] + provenance(data)
    rows = [[name, str(s["exit"]), f"{s['seconds']:.1f}", str(s.get("finite", "-"))] for name, s in data["steps"].items()]
    out += table(["step", "exit", "seconds", "finite outputs"], rows)
    if data.get("paper_profile"):
        pp = data["paper_profile"]
        out += [f"Paper profile ({pp['recipe']}, {pp['model']}, {pp['dataset']}): {pp['median_seconds_per_iteration']:.3f} "
                f"s per iteration, peak GPU memory {pp['peak_gpu_gb']:.2f} GB.", ""]
    measured = data.get("precision") or {}
    if measured:
        rows = sorted([part, f"{precision} (ran {report['ran']})", f"{figures['seconds']:.2f}",
                       "-" if figures["peak_gpu_gb"] is None else f"{figures['peak_gpu_gb']:.2f}"]
                      for precision, report in measured.items() for part, figures in report["parts"].items())
        out += table(["part", "precision", "seconds", "peak GPU memory (GB)"], rows)
    return out


def distributed_section(data: dict) -> list[str]:
    out = ["## Distributed distillation, 1 vs 2 processes (`distributed.py`)", ""] + provenance(data)
    out += [f"{data['model']}, ipc={data['ipc']}, syn_steps={data['syn_steps']}, torchrun with gloo.", ""]
    rows = [[str(r["processes"]), str(r["threads_per_process"]), f"{r['seconds_per_iteration']:.3f}",
             f"{r['iterations_per_s']:.2f}", f"{r['segments_per_s']:.2f}"] for r in data["rows"]]
    return out + table(["processes", "threads each", "s / iteration", "iterations/s", "segments/s"], rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    results = Path(args.results)
    lines = ["# Benchmark results", "",
             "Generated by `python -m benchmarks.make_results` from the JSON files in `benchmarks/results/`; "
             "every section names the command, machine, date and commit that produced it. "
             "Reproduce everything with the commands listed in each section (`--quick` variants run in the tests).",
             ""]
    from .accuracy_sections import cross_arch_long_section, long_horizon_section, parity_section, search_section

    # parity (issue 20) replaces the earlier side-by-side accuracy once its JSON exists
    builders = [("mct_study_cpu.json", mct_study_section), ("mct_study_checkpointed.json", checkpointed_study_section),
                ("mct_study_sweep.json", sweep_section),
                ("speed.json", speed_section),
                ("parity.json", parity_section) if (results / "parity.json").exists()
                else ("vs_public.json", vs_public_accuracy_section),
                ("long_horizon.json", long_horizon_section), ("cross_arch.json", cross_arch_long_section),
                ("vs_public.json", vs_public_section), ("storage.json", storage_section),
                ("distributed.json", distributed_section), ("gpu_check.json", gpu_check_section)]
    for name, build in builders:
        path = results / name
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("quick"):
                continue
            lines += build(data)
    if (results / "search.json").exists():  # a list of searches (issue 31's schema)
        lines += search_section(json.loads((results / "search.json").read_text()))
    for folder in sorted(path for path in (results / STUDIES).glob("*") if (path / "report.md").is_file()):
        lines += study_section(folder, results)
    notes = HERE / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    from mct_plugin.harness.io.atomic import atomic_write_text

    atomic_write_text(args.output, "\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
