"""The MCT study: which configuration of MCT beats MTT, by how much, and how reliably.

One shared set of Fashion-MNIST experts (ConvNetW32, long enough for the SGD trajectory to bend:
30 epochs, where the straight chord is only ~2/3 of the path length), then the same distillation
budget for every *arm* with >= 4 distillation seeds each; every evaluation point trains 5 fresh
networks. An arm is MTT or one MCT configuration:

* the number of waypoints P = 2, 4, 8 (public spacing), with and without smoothing;
* both gradient modes (``unrolled``: exact; ``first-order``, formerly ``constant-memory``: the gradient of the
  public MCT code);
* the public pacing ablations of beta (uniform / decreasing / projected points, P = 2).

Per arm the analysis reports the final and best accuracy, the area under the accuracy curve (the
mean accuracy over the run), the iterations needed to reach MTT's final accuracy, the largest drop
between two evaluations, and the paired difference to MTT (same seed = same initial images and
the same evaluation networks) with a 95% t-interval over seeds. A PNG shows accuracy against
iteration for every arm (mean over seeds, band = +- one std across seeds).

Sizes, chosen to fit about 4 hours of a 2-core machine (see RESULTS.md for the exact budget):
experts 10 x 30 epochs on a 20,000-image class-balanced subset (~25 min); ipc=1: 300 iterations,
syn_steps 20, expert_epochs 2, max_start_epoch 10, evaluated every 50 iterations; ipc=10 (an
iteration costs ~4x): MTT, the official configuration and the best ipc=1 configuration (P=4,
public spacing and smoothing, exact gradient), chosen after the ipc=1 part had run, 150
iterations, syn_steps 10, evaluated every 30;
evaluation 5 networks x 300 epochs (the public protocol trains 1000: reduced explicitly for the
CPU).

Every run is a resumable ``dd-harness`` run directory under the cache, so the study continues
where it stopped: ``--hours H`` bounds a part (no run starts after H hours; the runs still going
then are checkpointed and stopped), Ctrl-C checkpoints the runs in flight, and the same command
continues. ``--workers 2`` runs two distillations side by side with
one thread each (more runs per hour on 2 cores than one run with two threads).

The ``long`` study (issue 20: 2000 iterations, MTT against the default MCT, with the final and best
sets re-evaluated over 1000 epochs) is run and reported by ``long_horizon.py``, on the same experts.

Usage: ``python -m benchmarks.mct_study [--ipc 1,10] [--workers 2] [--hours 1.8] [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mct_plugin.harness.io.metric_names import EVALUATION

from ._common import components, output_dir, provenance, write_json
from ._jobs import add_part_options, run_jobs
from mct_plugin.harness.study.stats import mean as _mean, paired_interval, pstdev as _std



@dataclass(frozen=True)
class Arm:
    """One configuration of the distillation (everything else is shared)."""

    name: str
    matcher: str = "mct"
    gradient_mode: str = "first-order"
    waypoints: int = 2
    smooth: str = "none"
    spacing: str = "public"
    pacing: str = "distance"
    label: str = ""
    # hyper-parameters of this arm where they differ from the plan's (the first-order sweep)
    overrides: tuple[tuple[str, float], ...] = ()

    def plugin_options(self) -> dict:
        if self.matcher != "mct":
            return {}
        return {"waypoints": self.waypoints, "smooth": self.smooth, "waypoint_spacing": self.spacing,
                "pacing": self.pacing}


def _mct(name: str, label: str, **kw) -> Arm:
    return Arm(name, label=label, **kw)


ARMS = {a.name: a for a in [
    Arm("mtt", matcher="mtt", gradient_mode="unrolled", label="MTT (exact gradient)"),
    Arm("mtt-cm", matcher="mtt", gradient_mode="first-order", label="MTT, first-order gradient"),
    _mct("p2", "MCT P=2", waypoints=2, gradient_mode="unrolled"),
    _mct("p2-cm", "MCT P=2, first-order", waypoints=2),
    _mct("p2-end-cm", "MCT P=2, end smoothed, first-order", waypoints=2, smooth="end"),
    _mct("p4-public-cm", "MCT P=4, public smoothing, first-order (official)", waypoints=4, smooth="public"),
    _mct("p4-public", "MCT P=4, public smoothing", waypoints=4, smooth="public", gradient_mode="unrolled"),
    _mct("p4-cm", "MCT P=4, first-order", waypoints=4),
    _mct("p4", "MCT P=4", waypoints=4, gradient_mode="unrolled"),
    _mct("p8-public-cm", "MCT P=8, public smoothing, first-order", waypoints=8, smooth="public"),
    _mct("p8-public", "MCT P=8, public smoothing", waypoints=8, smooth="public", gradient_mode="unrolled"),
    _mct("p8-cm", "MCT P=8, first-order", waypoints=8),
    _mct("p8", "MCT P=8", waypoints=8, gradient_mode="unrolled"),
    _mct("p2-uniform-cm", "MCT P=2, uniform pacing, first-order", waypoints=2, pacing="uniform"),
    _mct("p2-decreasing-cm", "MCT P=2, decreasing pacing, first-order", waypoints=2, pacing="decreasing"),
    _mct("p2-projected-cm", "MCT P=2, projected pacing, first-order", waypoints=2, pacing="projected"),
    # the exact gradient at (nearly) constant memory: the same arms with --gradient-mode checkpointed
    Arm("mtt-ckpt", matcher="mtt", gradient_mode="checkpointed", label="MTT, checkpointed exact gradient"),
    _mct("p4-public-ckpt", "MCT P=4, public smoothing, checkpointed exact gradient", waypoints=4, smooth="public",
         gradient_mode="checkpointed"),
]}
def _sweep_arms() -> list[Arm]:
    """Issue 17: lr_img x lr_lr for the first-order and the exact gradient (MCT P=4, public
    smoothing), and the public MCT ipc1 recipe's shape scaled to the study's 30-epoch experts
    (syn_steps 60, expert_epochs 6 -> 4 and max_start_epoch 4 -> 2 of 50 -> 30 epochs, lr_lr 1e-7)."""
    arms = []
    for gradient, tag in (("first-order", "fo"), ("unrolled", "exact")):
        for lr_img in (100, 1000, 10000):
            for lr_lr in (1e-7, 1e-5):
                if (gradient, lr_img, lr_lr) == ("unrolled", 1000, 1e-5):
                    continue  # the study's own setting: the WINNER arm (its runs are shared)
                arms.append(_mct(f"sweep-{tag}-img{lr_img}-lr{lr_lr:.0e}", f"MCT P=4 public, {gradient}, lr_img "
                                 f"{lr_img}, lr_lr {lr_lr:g}", waypoints=4, smooth="public", gradient_mode=gradient,
                                 overrides=(("lr_img", lr_img), ("lr_lr", lr_lr))))
        arms.append(_mct(f"sweep-{tag}-public-shape", f"MCT P=4 public, {gradient}, the public ipc1 recipe's shape",
                         waypoints=4, smooth="public", gradient_mode=gradient,
                         overrides=(("syn_steps", 60), ("expert_epochs", 4), ("max_start_epoch", 2),
                                    ("lr_img", 1000), ("lr_lr", 1e-7))))
    return arms


ARMS.update({a.name: a for a in _sweep_arms()})
OFFICIAL = "p4-public-cm"  # the public MCT code's configuration (recipes mct/cifar10-ipc*)
WINNER = "p4-public"  # the default of --matcher mct and of recipes mct/fashionmnist-ipc*, chosen by this study


@dataclass(frozen=True)
class IpcPlan:
    arms: tuple[str, ...]
    iterations: int
    eval_every: int
    syn_steps: int = 20
    expert_epochs: int = 2
    max_start_epoch: int = 10
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01


@dataclass(frozen=True)
class Study:
    name: str
    model: str = "ConvNetW32"
    expert_subset: int = 20_000
    num_experts: int = 10
    train_epochs: int = 30
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    num_eval: int = 5
    epoch_eval_train: int = 300
    test_subset: int | None = None
    plans: dict[int, IpcPlan] = field(default_factory=dict)
    cache_name: str | None = None  # share the experts (and runs) of another study with the same experts
    runs_folder: str = "runs"  # a study whose plan differs from the cache owner's keeps its runs apart
    reeval_epochs: int | None = None  # the final and the best set re-evaluated with this many epochs


STUDIES = {
    "cpu": Study("cpu", plans={
        1: IpcPlan(tuple(ARMS), iterations=300, eval_every=50),
        10: IpcPlan(("mtt", OFFICIAL, WINNER), iterations=150, eval_every=30, syn_steps=10),
    }),
    # issue 17: the default arms (MTT and the MCT winner) with the checkpointed gradient, paired per
    # seed with the unrolled ones (same experts, seeds and protocol as "cpu")
    "checkpointed": Study("checkpointed", cache_name="cpu", plans={
        1: IpcPlan(("mtt", WINNER, "mtt-ckpt", WINNER + "-ckpt"), iterations=300, eval_every=50),
    }),
    # issue 17: is the first-order gradient only losing because of hyper-parameters tuned for the
    # exact one? 2 seeds per arm; the experts (and the shared arms' runs) of the "cpu" study
    "sweep": Study("sweep", seeds=(0, 1), cache_name="cpu", plans={
        1: IpcPlan((WINNER, *(a.name for a in _sweep_arms())), iterations=300, eval_every=50),
    }),
    # issue 20: the papers' horizon. MTT and the default MCT (WINNER, exact gradient), 2000 iterations,
    # the final and the best set re-evaluated with the public protocol's 1000 epochs (long_horizon.py)
    "long": Study("long", cache_name="cpu", runs_folder="runs_long", reeval_epochs=1000, plans={
        1: IpcPlan(("mtt", WINNER), iterations=2000, eval_every=250),
    }),
    # ConvNetW32 x 5 epochs: the tests' toy experts serve as its experts
    "long-quick": Study("long-quick", model="ConvNetW32", expert_subset=1000, num_experts=2, train_epochs=5,
                        seeds=(0, 1), num_eval=1, epoch_eval_train=2, test_subset=500,
                        runs_folder="runs_long", reeval_epochs=3,
                        plans={1: IpcPlan(("mtt", WINNER), iterations=4, eval_every=2, syn_steps=2, expert_epochs=1,
                                          max_start_epoch=2)}),
    "quick": Study("quick", model="ConvNetW16", expert_subset=1000, num_experts=2, train_epochs=4, seeds=(0, 1),
                   num_eval=2, epoch_eval_train=5, test_subset=500,
                   plans={1: IpcPlan(("mtt", "p2", OFFICIAL, "p2-projected-cm"), iterations=4, eval_every=2,
                                     syn_steps=2, expert_epochs=1, max_start_epoch=2)}),
}


def cache_root(study: Study) -> Path:
    from mct_plugin.harness.io.paths import cache_dir

    return cache_dir() / "benchmarks" / f"mct_study_{study.cache_name or study.name}"


def study_root(study: Study, cache: str | None) -> Path:
    """The folder of the study's experts and runs (``cache``, or the user cache), created."""
    root = Path(cache) if cache else cache_root(study)
    root.mkdir(parents=True, exist_ok=True)
    return root


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_data(study: Study):
    from mct_plugin.harness.data import load_dataset

    data = load_dataset(components().datasets.get("FashionMNIST"))
    if study.test_subset:
        data = dataclasses.replace(data, test_images=data.test_images[:study.test_subset],
                                   test_labels=data.test_labels[:study.test_subset])
    return data


def ensure_experts(study: Study, data, root: Path, log) -> Path:
    """Train the shared experts once (resumable: ``train_experts`` keeps finished experts)."""
    from mct_plugin.harness.config import ExpertConfig
    from mct_plugin.harness.experts.train import train_experts

    buffers = root / "buffers"
    done = buffers / "COMPLETE"
    if done.exists():
        return buffers
    config = ExpertConfig(model=study.model, num_experts=study.num_experts, train_epochs=study.train_epochs,
                          buffer_path=str(buffers), seed=0, subset=study.expert_subset, save_interval=5)
    started = time.perf_counter()
    result = train_experts(config, data=data.train_subset(study.expert_subset, seed=0), components=components(),
                           show_progress=False)
    record = {"seconds": time.perf_counter() - started,
              "test_acc_per_epoch": [r.test_acc_per_epoch for r in result.records]}
    done.write_text(json.dumps(record))
    log(f"experts trained in {record['seconds']:.0f} s")
    return buffers


def run_dir(root: Path, ipc: int, arm: str, seed: int, runs_folder: str = "runs") -> Path:
    return root / runs_folder / f"ipc{ipc}" / arm / f"seed{seed}"


def run_job(study: Study, ipc: int, arm_name: str, seed: int, root: Path, data=None) -> dict:
    """One distillation (resumed if interrupted); its summary is cached in ``summary.json``."""
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.distill import Distillation
    from mct_plugin.harness.errors import DivergenceError
    from mct_plugin.harness.io.rundir import RunDirectory

    out = run_dir(root, ipc, arm_name, seed, study.runs_folder)
    summary = out / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    plan, arm = study.plans[ipc], ARMS[arm_name]
    plan = dataclasses.replace(plan, **dict(arm.overrides))
    data = data if data is not None else load_data(study)
    config = DistillConfig(model=study.model, matcher=arm.matcher, gradient_mode=arm.gradient_mode,
                           buffer_path=str(root / "buffers"), out=str(out), ipc=ipc, syn_steps=plan.syn_steps,
                           expert_epochs=plan.expert_epochs, max_start_epoch=plan.max_start_epoch,
                           lr_img=plan.lr_img, lr_lr=plan.lr_lr, lr_teacher=plan.lr_teacher,
                           iterations=plan.iterations, eval_it=plan.eval_every, num_eval=study.num_eval,
                           epoch_eval_train=study.epoch_eval_train, seed=seed, checkpoint_every=10,
                           plugin_options=arm.plugin_options())
    resume = (out / "checkpoint.pt").exists()
    started = time.perf_counter()
    diverged = None
    try:
        Distillation(config, components=components(), data=data, overwrite=not resume, resume=resume,
                     show_progress=False, report=lambda m: None).run()
    except DivergenceError as exc:  # a result of the sweep, not a failure of the study
        diverged = str(exc)
    rows = RunDirectory(out).read_metrics() if (out / "metrics.jsonl").exists() else []
    record = {
        "arm": arm_name, "ipc": ipc, "seed": seed, "seconds_last_part": time.perf_counter() - started,
        "evals": [{"iteration": r["iteration"], "mean": r[EVALUATION.mean], "accs": r[EVALUATION.accuracies]}
                  for r in rows if EVALUATION.mean in r],
        "loss": [r["loss"] for r in rows if "loss" in r],
        "alpha": [r["alpha"] for r in rows if "alpha" in r],
        "seconds_per_iteration": sum(r["seconds"] for r in rows if "seconds" in r) / max(1, plan.iterations),
        "threads": __import__("torch").get_num_threads(),
        "diverged": diverged,
    }
    summary.write_text(json.dumps(record))
    return record


def random_baseline(study: Study, ipc: int, root: Path, data) -> dict:
    """A random real subset per seed, same protocol (cached)."""
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset

    path = root / f"random_ipc{ipc}.json"
    if path.exists():
        return json.loads(path.read_text())
    per_seed = {}
    for seed in study.seeds:
        x, y = random_real_subset(data, ipc, seed=seed)
        result = evaluate_set(x, y, study.plans[ipc].lr_teacher, data, study.model,
                              EvalSettings(num_eval=study.num_eval, epoch_eval_train=study.epoch_eval_train, seed=seed),
                              models=components().models)
        per_seed[str(seed)] = result.mean
    values = list(per_seed.values())
    record = {"per_seed": per_seed, "mean": sum(values) / len(values), "std": _std(values)}
    path.write_text(json.dumps(record))
    return record


# -- scheduling ------------------------------------------------------------------------------
def jobs(study: Study, ipcs: list[int]) -> list[tuple[int, str, int]]:
    """Seed-major order, so that every arm has a first seed before any arm has a fourth."""
    return [(ipc, arm, seed) for ipc in ipcs for seed in study.seeds for arm in study.plans[ipc].arms]


def run_all(study: Study, ipcs: list[int], root: Path, workers: int, deadline: float, log) -> bool:
    """Run the missing jobs in ``workers`` subprocesses until ``deadline`` (:func:`_jobs.run_jobs`);
    return whether all are finished."""
    def summary(job: tuple[int, str, int]) -> Path:
        return run_dir(root, *job, study.runs_folder) / "summary.json"

    def command(job: tuple[int, str, int]) -> list[str]:
        return [sys.executable, "-m", "benchmarks.mct_study", "--study", study.name, "--cache", str(root),
                "--job", ":".join(map(str, job))]

    def finished(job: tuple[int, str, int]) -> None:
        record = json.loads(summary(job).read_text())
        final = f"{100 * record['evals'][-1]['mean']:.2f}%" if record["evals"] else "diverged"
        log(f"finished ipc={job[0]} {job[1]} seed={job[2]}: final {final}, {record['seconds_per_iteration']:.2f} s/it")

    return run_jobs(jobs(study, ipcs), command, lambda job: summary(job).exists(), workers, deadline, log, finished)


# -- analysis --------------------------------------------------------------------------------
def area_under_curve(points: list[tuple[int, float]]) -> float:
    """Trapezoidal mean accuracy over the run (iteration-weighted)."""
    if len(points) < 2:
        return points[0][1] if points else float("nan")
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:]))
    return area / (points[-1][0] - points[0][0])


# arms compared seed by seed with another arm besides MTT: the same method with the other exact gradient
PAIRED_WITH = {"mtt-ckpt": "mtt", WINNER + "-ckpt": WINNER}


def arm_settings(arm: str) -> dict:
    """What a report needs to name an arm: its label, gradient and the plan values it overrides."""
    a = ARMS[arm]
    return {"label": a.label, "gradient_mode": a.gradient_mode, "overrides": dict(a.overrides)}


def analyse_ipc(records: list[dict], plan: IpcPlan) -> dict:
    by_arm: dict[str, dict[int, dict]] = {}
    diverged: dict[str, list[int]] = {}
    for r in records:
        if r.get("diverged") or not r["evals"]:  # a result of a sweep: counted, not averaged
            diverged.setdefault(r["arm"], []).append(r["seed"])
            continue
        by_arm.setdefault(r["arm"], {})[r["seed"]] = r
    mtt = by_arm.get("mtt", {})
    mtt_final = _mean([r["evals"][-1]["mean"] for r in mtt.values()]) if mtt else None
    result = {}
    for arm in plan.arms:
        runs = by_arm.get(arm)
        if not runs:
            if arm in diverged:
                result[arm] = {**arm_settings(arm), "seeds": [], "diverged_seeds": sorted(diverged[arm])}
            continue
        iterations = [p["iteration"] for p in next(iter(runs.values()))["evals"]]
        curve = []
        for i, it in enumerate(iterations):
            values = [r["evals"][i]["mean"] for r in runs.values()]
            curve.append({"iteration": it, "mean": _mean(values), "std": _std(values)})
        finals = {s: r["evals"][-1]["mean"] for s, r in runs.items()}
        bests = {s: max(p["mean"] for p in r["evals"]) for s, r in runs.items()}
        aucs = {s: area_under_curve([(p["iteration"], p["mean"]) for p in r["evals"]]) for s, r in runs.items()}
        drops = {s: max([0.0] + [a["mean"] - b["mean"] for a, b in zip(r["evals"], r["evals"][1:])])
                 for s, r in runs.items()}
        stats = {
            **arm_settings(arm), "seeds": sorted(runs), "curve": curve,
            "final_mean": _mean(list(finals.values())), "final_std": _std(list(finals.values())),
            "best_mean": _mean(list(bests.values())), "best_of_mean_curve": max(p["mean"] for p in curve),
            "auc_mean": _mean(list(aucs.values())),
            "largest_drop": max(drops.values()), "largest_drop_mean": _mean(list(drops.values())),
            "seconds_per_iteration": _mean([r["seconds_per_iteration"] for r in runs.values()]),
            "final_alpha": _mean([r["alpha"][-1] for r in runs.values() if r["alpha"]]),
        }
        stats["diverged_seeds"] = sorted(diverged.get(arm, []))
        if mtt_final is not None:
            stats["iterations_to_mtt_final"] = next((p["iteration"] for p in curve if p["mean"] >= mtt_final), None)
            common = sorted(set(runs) & set(mtt))
            stats["paired_vs_mtt"] = {
                "final": paired_interval([finals[s] - mtt[s]["evals"][-1]["mean"] for s in common]),
                "best": paired_interval([bests[s] - max(p["mean"] for p in mtt[s]["evals"]) for s in common]),
                "auc": paired_interval([aucs[s] - area_under_curve([(p["iteration"], p["mean"])
                                                                   for p in mtt[s]["evals"]]) for s in common]),
            }
        reference = by_arm.get(PAIRED_WITH.get(arm, ""), {})
        if reference:
            common = sorted(set(runs) & set(reference))
            stats["paired_vs_" + PAIRED_WITH[arm]] = {  # after the MTT pairing: it may be MTT
                "final": paired_interval([finals[s] - reference[s]["evals"][-1]["mean"] for s in common]),
                "per_seed": {s: [reference[s]["evals"][-1]["mean"], finals[s]] for s in common}}
        result[arm] = stats
    return {"arms": result, "mtt_final": mtt_final, "iterations": plan.iterations}


def plot(analysis: dict, study: Study, baselines: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mct_plugin.harness.io.atomic import atomic_path

    panels = [(ipc, arm) for ipc, a in analysis.items() for arm, stats in a["arms"].items()
              if arm != "mtt" and "curve" in stats]
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, sharey=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (ipc, arm) in zip(axes.flat, panels):
        ax.axis("on")
        arms = analysis[ipc]["arms"]
        for name, colour in (("mtt", "grey"), (arm, "tab:red" if arm != OFFICIAL else "tab:green")):
            if name not in arms:
                continue
            curve = arms[name]["curve"]
            xs = [p["iteration"] for p in curve]
            ms = [100 * p["mean"] for p in curve]
            ss = [100 * p["std"] for p in curve]
            ax.plot(xs, ms, "o-", ms=2.5, lw=1.2, color=colour, label="MTT" if name == "mtt" else name)
            ax.fill_between(xs, [m - s for m, s in zip(ms, ss)], [m + s for m, s in zip(ms, ss)], color=colour,
                            alpha=0.18)
        if ipc in baselines:
            ax.axhline(100 * baselines[ipc]["mean"], ls="--", lw=0.8, color="black", label="random subset")
        ax.set_title(f"ipc={ipc}: {ARMS[arm].label}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    fig.supxlabel("distillation iteration")
    fig.supylabel("test accuracy (%), mean +- std over seeds")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def report(study: Study, ipcs: list[int], root: Path, data, out: Path, log) -> dict:
    analysis, baselines, part_records = {}, {}, {}
    for ipc in ipcs:
        records = [json.loads(p.read_text())
                   for p in sorted((root / study.runs_folder / f"ipc{ipc}").glob("*/seed*/summary.json"))]
        if not records:
            continue
        baselines[ipc] = random_baseline(study, ipc, root, data)
        analysis[ipc] = analyse_ipc(records, study.plans[ipc])
        part_records[ipc] = records
    experts = json.loads((root / "buffers" / "COMPLETE").read_text())
    finals = [accs[-1] for accs in experts["test_acc_per_epoch"]]
    payload = {"benchmark": "mct_study", "study": dataclasses.asdict(study), **provenance(),
               "experts": {"seconds": experts["seconds"], "final_test_acc": finals,
                           "test_acc_per_epoch": experts["test_acc_per_epoch"]},
               "random_subset": {str(k): v for k, v in baselines.items()},
               "analysis": {str(k): v for k, v in analysis.items()},
               "runs": {str(k): v for k, v in part_records.items()}}
    write_json(out / f"mct_study_{study.name}.json", payload)
    plot(analysis, study, baselines, out / f"mct_study_{study.name}.png")
    for ipc, a in analysis.items():
        for arm, s in a["arms"].items():
            if "final_mean" not in s:
                log(f"ipc={ipc} {arm:18s} diverged on every seed")
                continue
            d = s.get("paired_vs_mtt", {}).get("final", {})
            log(f"ipc={ipc} {arm:18s} final {100 * s['final_mean']:.2f} +- {100 * s['final_std']:.2f}  "
                f"best {100 * s['best_mean']:.2f}  auc {100 * s['auc_mean']:.2f}  "
                f"vs MTT {100 * d.get('mean', float('nan')):+.2f}")
    return payload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=sorted(STUDIES), default="cpu")
    parser.add_argument("--quick", action="store_true", help="same as --study quick (a smoke test, in-process)")
    parser.add_argument("--ipc", default=None, help="comma-separated ipcs of the study to run (default: all)")
    add_part_options(parser)
    parser.add_argument("--report-only", action="store_true", help="only analyse the finished runs")
    parser.add_argument("--job", default=None, help=argparse.SUPPRESS)  # IPC:ARM:SEED, run by a worker
    args = parser.parse_args(argv)
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    study = STUDIES["quick" if args.quick else args.study]
    root = study_root(study, args.cache)
    if args.job:
        from mct_plugin.harness.errors import Interrupted

        ipc, arm, seed = args.job.split(":")
        try:
            run_job(study, int(ipc), arm, int(seed), root)
        except Interrupted as stopped:  # the part's deadline: checkpointed, resumed by the next part
            log(str(stopped))
            return 3
        return 0
    ipcs = [int(i) for i in args.ipc.split(",")] if args.ipc else sorted(study.plans)
    data = load_data(study)
    ensure_experts(study, data, root, log)
    complete = True
    if not args.report_only:
        if args.quick:  # in-process, one after the other: a smoke test of the whole pipeline
            for ipc, arm, seed in jobs(study, ipcs):
                run_job(study, ipc, arm, seed, root, data)
        else:
            complete = run_all(study, ipcs, root, args.workers, time.time() + 3600 * args.hours, log)
    report(study, ipcs, root, data, output_dir(args.out), log)
    if not complete:
        log("the time budget is spent: run the same command again to continue")
    return 0


if __name__ == "__main__":
    sys.exit(main())
