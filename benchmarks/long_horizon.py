"""The long horizon: MTT against the default MCT over 2000 iterations, as the papers run them.

The MCT study's experts and protocol (``mct_study.py``, study ``long``: ConvNetW32, 10 experts x 30
epochs on Fashion-MNIST, shared with the ``cpu`` study; ipc=1, syn_steps 20, expert_epochs 2,
max_start_epoch 10, lr_img 1000, lr_lr 1e-5), 2000 iterations instead of 300, seeds 0-3, two arms:
MTT and the default MCT (P=4, public spacing and smoothing, the exact gradient, ``unrolled``),
evaluated every 250 iterations with 5 networks x 300 epochs. Then the **final** set (after the last
iteration) and the **best** set of every run (the set of the evaluation point with the highest
accuracy, iteration 0 included: the maximum over evaluations that the papers report) are
re-evaluated with the public protocol's 1000 epochs (5 networks; a seed's networks are the same for
both arms, so the comparison is paired).

Reported per arm, in %: final and best (300-epoch evaluations), ``final_1000ep`` and
``best_1000ep``, the area under the accuracy curve (the mean accuracy over the run), the iterations
the mean curve needs to reach MTT's final accuracy, the largest drop between two consecutive
evaluations; the paired difference MCT - MTT per seed with 95% t-intervals; the distance of
MCT's best 1000-epoch accuracy to the 76% goal; a PNG of accuracy against iteration (mean over
seeds, band +- one std). JSON: ``results/long_horizon.json``.

Resumable in parts: ``--hours H`` ends a part after H hours (runs in flight are checkpointed and
resumed, an unfinished re-evaluation is redone), the same command continues; ``--workers 2`` runs
two jobs side by side with one thread each. ``--quick``: tiny experts, 4 iterations, one network,
a few epochs, in-process (a smoke test; ``long_horizon_quick.json``).

Usage: ``python -m benchmarks.long_horizon [--workers 2] [--hours 1.8] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ._common import evaluation_record, output_dir, provenance, save_figure, write_json
from ._jobs import add_part_options, run_jobs
from mct_plugin.harness.study.stats import mean, paired_interval, pstdev

ARM_NAMES = ("mtt", "mct")  # the JSON's names; "mct" is the study's WINNER arm
WHICH = ("final", "best")
GOAL = 76.0  # % at ipc=1 (issue 20): MCT's best set under the 1000-epoch evaluation


def study_arm(name: str) -> str:
    from .mct_study import WINNER

    return WINNER if name == "mct" else name


def set_directory(root: Path, study, arm: str, seed: int, which: str) -> Path:
    """The run directory of (arm, seed) for the final set, its ``best/`` for the best set."""
    from .mct_study import run_dir

    run = run_dir(root, 1, study_arm(arm), seed, study.runs_folder)
    return run if which == "final" else run / "best"


def reevaluation_path(root: Path, study, arm: str, seed: int, which: str) -> Path:
    return set_directory(root, study, arm, seed, "final") / f"reeval_{which}_{study.reeval_epochs}ep.json"


def best_is_final(root: Path, study, arm: str, seed: int) -> bool:
    """Whether the best set is the final one (the best evaluation was the last): evaluated once."""
    import torch

    from mct_plugin.harness.eval.saved_set import load_synthetic

    final = load_synthetic(set_directory(root, study, arm, seed, "final"))
    best = load_synthetic(set_directory(root, study, arm, seed, "best"))
    return torch.equal(final[0], best[0]) and torch.equal(final[1], best[1]) and final[2] == best[2]


def reevaluated_accuracy(study, root: Path, arm: str, seed: int, which: str) -> float | None:
    """The ``which`` set's re-evaluated accuracy in % (a best set that is the final one: the final
    set's), None if not evaluated yet."""
    path = reevaluation_path(root, study, arm, seed, which)
    if not path.exists() and which == "best" and best_is_final(root, study, arm, seed):
        path = reevaluation_path(root, study, arm, seed, "final")
    return 100 * json.loads(path.read_text())["mean"] if path.exists() else None


def reevaluate(study, root: Path, arm: str, seed: int, which: str, data=None) -> dict:
    """The ``which`` set of (arm, seed) with ``study.reeval_epochs`` epochs (cached next to the run)."""
    from mct_plugin.harness.eval.saved_set import load_synthetic

    from .mct_study import load_data

    path = reevaluation_path(root, study, arm, seed, which)
    if path.exists():
        return json.loads(path.read_text())
    if which == "best" and best_is_final(root, study, arm, seed):
        record = {**reevaluate(study, root, arm, seed, "final", data), "same_as_final": True}
    else:
        images, labels, lr = load_synthetic(set_directory(root, study, arm, seed, which))
        record = evaluation_record(images, labels, lr, data if data is not None else load_data(study), study.model,
                                   study.num_eval, study.reeval_epochs, seed)
    write_json(path, record)
    return record


def finished_runs(study, root: Path) -> list[tuple[str, int]]:
    """(arm, seed) of the runs that ran to the end (a diverged run has no sets to evaluate)."""
    from .mct_study import run_dir

    done = []
    for seed in study.seeds:
        for arm in ARM_NAMES:
            summary = run_dir(root, 1, study_arm(arm), seed, study.runs_folder) / "summary.json"
            if summary.exists() and not json.loads(summary.read_text()).get("diverged"):
                done.append((arm, seed))
    return done


def distinct_sets(study, root: Path) -> list[tuple[str, int, str]]:
    """(arm, seed, which) of every finished run's sets; a best set equal to the final one is not
    listed (it is evaluated once, as the final set)."""
    return [(arm, seed, which) for arm, seed in finished_runs(study, root)
            for which in (("final",) if best_is_final(root, study, arm, seed) else WHICH)]


# -- analysis ------------------------------------------------------------------------------------
def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def analyse(study, root: Path, records: list[dict]) -> dict:
    """The JSON's ``arms`` and ``paired`` (values in %, one per seed, in seed order)."""
    from .mct_study import analyse_ipc, area_under_curve

    plan = study.plans[1]
    summary = analyse_ipc(records, plan)["arms"]
    arms, per_seed = {}, {}
    for name in ARM_NAMES:
        runs = {r["seed"]: r for r in records
                if r["arm"] == study_arm(name) and r["evals"] and not r.get("diverged")}
        seeds = sorted(runs)
        values = {
            "final": [100 * runs[s]["evals"][-1]["mean"] for s in seeds],
            "best": [100 * max(p["mean"] for p in runs[s]["evals"]) for s in seeds],
            **{f"{which}_{study.reeval_epochs}ep": [reevaluated_accuracy(study, root, name, s, which) for s in seeds]
               for which in WHICH},
            "auc": [100 * area_under_curve([(p["iteration"], p["mean"]) for p in runs[s]["evals"]]) for s in seeds],
        }
        best_points = [max(runs[s]["evals"], key=lambda p: p["mean"]) for s in seeds]
        stats = summary.get(study_arm(name), {})
        arms[name] = {
            "arm": study_arm(name), "label": stats.get("label"), "seeds": seeds, **values,
            "best_iteration": [p["iteration"] for p in best_points],
            "best_is_final": [best_is_final(root, study, name, s) for s in seeds],
            "curve": [{**p, "mean": 100 * p["mean"], "std": 100 * p["std"]} for p in stats.get("curve", [])],
            "iterations_to_mtt_final": stats.get("iterations_to_mtt_final"),
            "largest_drop": _percent(stats.get("largest_drop")),
            "largest_drop_mean": _percent(stats.get("largest_drop_mean")),
            "seconds_per_iteration": stats.get("seconds_per_iteration"),
            "final_alpha": stats.get("final_alpha"),
        }
        per_seed[name] = {key: dict(zip(seeds, v)) for key, v in values.items()}
    paired = {}
    for key in per_seed.get("mct", {}):
        mtt, mct = per_seed["mtt"][key], per_seed["mct"][key]
        common = [s for s in sorted(set(mtt) & set(mct)) if mtt[s] is not None and mct[s] is not None]
        if common:
            paired[key] = {**paired_interval([mct[s] - mtt[s] for s in common]), "seeds": common}
    return {"arms": arms, "paired_mct_minus_mtt": paired}


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = payload["reeval_epochs"]
    fig, ax = plt.subplots(figsize=(10.5, 4.8))
    for offset, (name, colour) in enumerate((("mtt", "grey"), ("mct", "tab:red"))):
        arm = payload["arms"][name]
        if not arm["curve"]:
            continue
        xs = [p["iteration"] for p in arm["curve"]]
        ms, ss = [p["mean"] for p in arm["curve"]], [p["std"] for p in arm["curve"]]
        ax.plot(xs, ms, "o-", ms=3, color=colour, label=f"{name.upper()} ({len(arm['seeds'])} seeds, "
                                                         f"{payload['num_eval']} nets x {payload['epoch_eval_train']} ep)")
        ax.fill_between(xs, [m - s for m, s in zip(ms, ss)], [m + s for m, s in zip(ms, ss)], color=colour, alpha=0.18)
        for which, marker in (("final", "s"), ("best", "^")):
            values = [v for v in arm[f"{which}_{epochs}ep"] if v is not None]
            if values:
                x = payload["iterations"] * (1.02 + 0.02 * offset) + (0.03 * payload["iterations"] if which == "best" else 0)
                ax.errorbar([x], [mean(values)], yerr=[pstdev(values)], fmt=marker, color=colour, capsize=3,
                            label=f"{name.upper()} {which} set, {epochs} epochs")
    if payload.get("random_subset"):
        ax.axhline(payload["random_subset"], ls="--", lw=0.8, color="black", label="random real subset")
    ax.axhline(GOAL, ls=":", lw=0.8, color="tab:blue", label=f"goal {GOAL:g}%")
    ax.set_xlabel("distillation iteration")
    ax.set_ylabel("test accuracy (%), mean +- std over seeds")
    ax.set_title(f"Fashion-MNIST ipc={payload['ipc']}: MTT vs default MCT over {payload['iterations']} iterations",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, path)


def report(study, root: Path, data, out: Path, quick: bool, log) -> dict:
    from .mct_study import random_baseline

    records = [json.loads(p.read_text())
               for p in sorted((root / study.runs_folder / "ipc1").glob("*/seed*/summary.json"))]
    plan = study.plans[1]
    payload = {"benchmark": "long_horizon", "ipc": 1, "iterations": plan.iterations, "quick": quick,
               "eval_every": plan.eval_every, "num_eval": study.num_eval, "epoch_eval_train": study.epoch_eval_train,
               "reeval_epochs": study.reeval_epochs, "goal": GOAL, **provenance(),
               "study": {"name": study.name, "model": study.model, "seeds": list(study.seeds),
                         "experts": f"{study.num_experts} x {study.train_epochs} epochs on {study.expert_subset} images",
                         "plan": {k: getattr(plan, k) for k in ("syn_steps", "expert_epochs", "max_start_epoch",
                                                                  "lr_img", "lr_lr", "lr_teacher")}},
               **analyse(study, root, records)}
    if records:
        payload["random_subset"] = 100 * random_baseline(study, 1, root, data)["mean"]
    best = [v for v in payload["arms"]["mct"][f"best_{study.reeval_epochs}ep"] if v is not None]
    if best:
        payload["goal_distance"] = GOAL - mean(best)
    name = "long_horizon_quick" if quick else "long_horizon"
    write_json(out / f"{name}.json", payload)
    plot(payload, out / f"{name}.png")
    for arm_name, arm in payload["arms"].items():
        if arm["seeds"]:
            log(f"{arm_name}: final {mean(arm['final']):.2f}%, best {mean(arm['best']):.2f}% over "
                f"{len(arm['seeds'])} seeds")
    for key, interval in payload["paired_mct_minus_mtt"].items():
        if interval["low"] is not None:
            log(f"MCT - MTT {key}: {interval['mean']:+.2f} [{interval['low']:+.2f}, {interval['high']:+.2f}]")
    log(f"wrote {out / f'{name}.json'}")
    return payload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the long-quick study, in-process (a smoke test)")
    add_part_options(parser, "folder of experts and runs (default: the cpu study's)")
    parser.add_argument("--report-only", action="store_true", help="only analyse what is finished")
    parser.add_argument("--job", default=None, help=argparse.SUPPRESS)  # ARM:SEED:WHICH, a re-evaluation
    args = parser.parse_args(argv)
    from mct_plugin.harness.runtime.allocator import tune_allocator

    from .mct_study import STUDIES, ensure_experts, jobs, load_data, log, run_all, run_job, study_root

    tune_allocator()
    study = STUDIES["long-quick" if args.quick else "long"]
    root = study_root(study, args.cache)
    if args.job:
        arm, seed, which = args.job.split(":")
        record = reevaluate(study, root, arm, int(seed), which)
        log(f"{arm} seed {seed} {which} set, {study.reeval_epochs} epochs: {100 * record['mean']:.2f}%")
        return 0
    deadline = time.time() + 3600 * args.hours
    data = load_data(study)
    ensure_experts(study, data, root, log)
    complete = True
    if not args.report_only:
        if args.quick:  # in-process, one after the other
            for ipc, arm, seed in jobs(study, [1]):
                run_job(study, ipc, arm, seed, root, data)
            for arm, seed, which in distinct_sets(study, root):
                reevaluate(study, root, arm, seed, which, data)
        else:
            complete = run_all(study, [1], root, args.workers, deadline, log)
            command = lambda job: [sys.executable, "-m", "benchmarks.long_horizon", "--cache", str(root),  # noqa: E731
                                   "--job", ":".join(map(str, job))]
            reevaluations = distinct_sets(study, root)
            complete = run_jobs(reevaluations, command,
                                lambda job: reevaluation_path(root, study, *job).exists(), args.workers, deadline,
                                log) and complete
    report(study, root, data, output_dir(args.out), args.quick, log)
    if not complete:
        log("not finished (the time budget is spent): run the same command again to continue")
    return 0


if __name__ == "__main__":
    sys.exit(main())
