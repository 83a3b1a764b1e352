"""Convergence and stability: MTT vs MCT on identical experts, seeds and iteration budgets.

For each ipc of the profile and each method (``mtt``: discrete sampler on the recorded SGD
trajectory; ``mct``: continuous sampler on the convexified trajectory, P=2, no curriculum and no
soft labels, so that only the trajectory and the sampling differ), two or more distillation
seeds run with the same hyper-parameters; the synthetic set is evaluated every ``eval_every``
iterations with ``num_eval`` fresh networks. A random real subset of the same size is evaluated
with the same protocol.

Profiles:

* ``cpu`` - Fashion-MNIST on a 2-core CPU in about 1.5-2 hours: ConvNetW32 (width 32, 16x fewer
  convolution FLOPs than width 128, same family and depth), 5 experts x 12 epochs on a 30,000-image
  class-balanced subset; ipc=1: 600 iterations, syn_steps 20, evaluated every 50; ipc=10: 200
  iterations, syn_steps 10 (an ipc=10 iteration costs ~6x an ipc=1 one), evaluated every 40;
  expert_epochs 2; 3 evaluation networks x 300 epochs; seeds 0 and 1;
* ``paper`` - CIFAR-10 with ZCA and the public MTT/MCT hyper-parameters (ConvNet, 100 experts x
  50 epochs, 5000 iterations) for a machine with a GPU and the data (``--data-path``);
* ``quick`` - a smoke test of the whole pipeline in well under a minute.

Outputs: ``convergence_<profile>.json`` and ``convergence_<profile>.png`` (accuracy vs iteration,
mean over seeds with a band of +- one std across seeds; the random-subset level dashed).
Runs and experts are cached under the user cache directory; a rerun skips finished runs.

Usage: ``python -m benchmarks.convergence --profile cpu|paper|quick [--out DIR]``
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

import torch

from mct_plugin.harness.io.metric_names import EVALUATION

from ._common import components, output_dir, provenance, write_json


@dataclass(frozen=True)
class IpcSettings:
    iterations: int
    eval_every: int
    syn_steps: int = 20
    expert_epochs: int = 2
    max_start_epoch: int = 5
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str
    model: str
    expert_subset: int | None
    num_experts: int
    train_epochs: int
    ipcs: dict[int, IpcSettings]
    seeds: tuple[int, ...] = (0, 1)
    num_eval: int = 3
    epoch_eval_train: int = 300
    zca: bool = False
    test_subset: int | None = None
    methods: tuple[str, ...] = ("mtt", "mct")


PROFILES = {
    "quick": Profile("quick", "FashionMNIST", "ConvNetW16", 1000, 2, 3,
                     {1: IpcSettings(iterations=4, eval_every=2, syn_steps=3, expert_epochs=1, max_start_epoch=2,
                                     lr_lr=1e-7)},
                     seeds=(0, 1), num_eval=2, epoch_eval_train=10, test_subset=500),
    "cpu": Profile("cpu", "FashionMNIST", "ConvNetW32", 30_000, 5, 12,
                   {1: IpcSettings(iterations=600, eval_every=50, max_start_epoch=5),
                    10: IpcSettings(iterations=200, eval_every=40, syn_steps=10, max_start_epoch=8)}),
    "paper": Profile("paper", "CIFAR10", "ConvNet", None, 100, 50,
                     {1: IpcSettings(iterations=5000, eval_every=500, syn_steps=50, max_start_epoch=2,
                                     lr_img=100.0, lr_lr=1e-7),
                      10: IpcSettings(iterations=5000, eval_every=500, syn_steps=30, max_start_epoch=20,
                                      lr_img=1e5, lr_lr=1e-4)},
                     num_eval=5, epoch_eval_train=1000, zca=True),
}


def cache_root(profile: Profile) -> Path:
    from mct_plugin.harness.io.paths import cache_dir

    return cache_dir() / "benchmarks" / f"convergence_{profile.name}"


def load_data(profile: Profile, data_path: str | None):
    from mct_plugin.harness.data import load_dataset

    data = load_dataset(components().datasets.get(profile.dataset), data_path, zca=profile.zca)
    if profile.test_subset:
        data = dataclasses.replace(data, test_images=data.test_images[:profile.test_subset],
                                   test_labels=data.test_labels[:profile.test_subset])
    return data


def ensure_experts(profile: Profile, data, root: Path, log) -> Path:
    from mct_plugin.harness.config import ExpertConfig
    from mct_plugin.harness.experts.train import train_experts

    config = ExpertConfig(dataset=profile.dataset, model=profile.model, num_experts=profile.num_experts,
                          train_epochs=profile.train_epochs, buffer_path=str(root / "buffers"), zca=profile.zca,
                          seed=0, subset=profile.expert_subset)
    done = root / "buffers" / "COMPLETE"
    if not done.exists():
        subset = data.train_subset(profile.expert_subset, seed=0) if profile.expert_subset else data
        started = time.perf_counter()
        result = train_experts(config, data=subset, components=components(), show_progress=False)
        accs = [r.final_test_acc for r in result.records]
        done.write_text(json.dumps({"seconds": time.perf_counter() - started, "final_test_acc": accs}))
        log(f"experts trained in {time.perf_counter() - started:.0f} s, test acc {accs}")
    return root / "buffers"


def expert_accuracies(buffers: Path, profile: Profile, data) -> list[float]:
    """Test accuracy of every expert's final checkpoint, read back from the buffer files."""
    from mct_plugin.harness.experts.buffers import load_replay_buffer, replay_buffer_files
    from mct_plugin.harness.training import test_accuracy

    accuracies = []
    for path in replay_buffer_files(buffers / data.spec.buffer_subdir(profile.model, profile.zca)):
        for trajectory in load_replay_buffer(path):
            model = components().models.create(profile.model, data.spec.channels, data.num_classes, data.spec.image_size)
            with torch.no_grad():
                for parameter, value in zip(model.parameters(), trajectory[-1]):
                    parameter.copy_(value)
            accuracies.append(test_accuracy(model, data.test_images, data.test_labels, batch_size=500)[1])
    return accuracies


def run_one(profile: Profile, data, buffers: Path, method: str, ipc: int, seed: int, root: Path, log) -> dict:
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.distill import Distillation
    from mct_plugin.harness.io.rundir import RunDirectory

    s = profile.ipcs[ipc]
    out = root / "runs" / f"{method}_ipc{ipc}_seed{seed}"
    summary = out / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    config = DistillConfig(dataset=profile.dataset, model=profile.model, matcher=method, buffer_path=str(buffers),
                           out=str(out), ipc=ipc, syn_steps=s.syn_steps, expert_epochs=s.expert_epochs,
                           max_start_epoch=s.max_start_epoch, lr_img=s.lr_img, lr_lr=s.lr_lr, lr_teacher=s.lr_teacher,
                           iterations=s.iterations, eval_it=s.eval_every, num_eval=profile.num_eval,
                           epoch_eval_train=profile.epoch_eval_train, zca=profile.zca, seed=seed, checkpoint_every=25)
    resume = (out / "checkpoint.pt").exists()
    started = time.perf_counter()
    result = Distillation(config, components=components(), data=data, overwrite=not resume, resume=resume, show_progress=False,
                          report=log).run()
    rows = RunDirectory(out).read_metrics() if resume else result.rows
    record = {
        "method": method, "ipc": ipc, "seed": seed, "seconds": time.perf_counter() - started,
        "evals": [{"iteration": r["iteration"], "mean": r[EVALUATION.mean], "std": r[EVALUATION.std],
                   "accs": r[EVALUATION.accuracies]} for r in rows if EVALUATION.mean in r],
        "loss": [r["loss"] for r in rows if "loss" in r],
        "seconds_per_iteration": sum(r["seconds"] for r in rows if "seconds" in r) / max(1, s.iterations),
    }
    summary.write_text(json.dumps(record))
    log(f"{method} ipc={ipc} seed={seed}: final {100 * record['evals'][-1]['mean']:.2f}% "
        f"in {record['seconds']:.0f} s")
    return record


def random_baseline(profile: Profile, data, ipc: int) -> dict:
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset

    accs = []
    for seed in profile.seeds:
        x, y = random_real_subset(data, ipc, seed=seed)
        accs += evaluate_set(x, y, profile.ipcs[ipc].lr_teacher, data, profile.model,
                             EvalSettings(num_eval=profile.num_eval, epoch_eval_train=profile.epoch_eval_train,
                                        seed=seed), models=components().models).accuracies
    mean = sum(accs) / len(accs)
    return {"mean": mean, "std": math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs)), "accs": accs}


# -- analysis -----------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def curve(records: list[dict]) -> list[dict]:
    """Per evaluation iteration: mean and std across seeds of the per-seed mean accuracy."""
    by_iteration: dict[int, list[float]] = {}
    for record in records:
        for point in record["evals"]:
            by_iteration.setdefault(point["iteration"], []).append(point["mean"])
    return [{"iteration": it, "mean": _mean_std(v)[0], "std": _mean_std(v)[1], "seeds": len(v)}
            for it, v in sorted(by_iteration.items())]


def iterations_to_reach(points: list[dict], level: float) -> int | None:
    return next((p["iteration"] for p in points if p["mean"] >= level), None)


def analyse(records: list[dict], baselines: dict[int, dict], profile: Profile) -> dict:
    analysis = {}
    for ipc in profile.ipcs:
        per_method = {}
        for method in profile.methods:
            runs = [r for r in records if r["method"] == method and r["ipc"] == ipc]
            if not runs:
                continue
            points = curve(runs)
            finals = [r["evals"][-1]["mean"] for r in runs]
            drops = [max([0.0] + [a["mean"] - b["mean"] for a, b in zip(r["evals"], r["evals"][1:])]) for r in runs]
            tails = []
            for r in runs:
                tail = r["loss"][len(r["loss"]) // 2:]
                tails.append(_mean_std(tail)[1] if tail else float("nan"))
            per_method[method] = {
                "curve": points, "final_mean": _mean_std(finals)[0], "final_std_across_seeds": _mean_std(finals)[1],
                "best_mean": max(p["mean"] for p in points), "largest_drop_between_evals": max(drops),
                "loss_std_second_half": _mean_std(tails)[0],
                "final_loss_mean": _mean_std([sum(r["loss"][-20:]) / len(r["loss"][-20:]) for r in runs])[0],
                "seconds_per_iteration": _mean_std([r["seconds_per_iteration"] for r in runs])[0],
            }
        if "mtt" in per_method:
            target = per_method["mtt"]["final_mean"]
            for method, stats in per_method.items():
                stats["iterations_to_reach"] = {
                    f"{int(100 * f)}% of final MTT": iterations_to_reach(stats["curve"], f * target)
                    for f in (0.95, 1.0)}
        analysis[str(ipc)] = {"methods": per_method, "random_subset": baselines.get(ipc),
                              "iterations": profile.ipcs[ipc].iterations}
    return analysis


def plot(analysis: dict, profile: Profile, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mct_plugin.harness.io.atomic import atomic_path

    ipcs = list(analysis)
    fig, axes = plt.subplots(1, len(ipcs), figsize=(6 * len(ipcs), 4.2), squeeze=False)
    colours = {"mtt": "tab:blue", "mct": "tab:red"}
    for ax, ipc in zip(axes[0], ipcs):
        for method, stats in analysis[ipc]["methods"].items():
            xs = [p["iteration"] for p in stats["curve"]]
            means = [100 * p["mean"] for p in stats["curve"]]
            stds = [100 * p["std"] for p in stats["curve"]]
            ax.plot(xs, means, "o-", ms=3, color=colours.get(method), label=method.upper())
            ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=colours.get(method), alpha=0.2)
        baseline = analysis[ipc].get("random_subset")
        if baseline:
            ax.axhline(100 * baseline["mean"], ls="--", color="grey", label="random real subset")
        ax.set_title(f"{profile.dataset}, {profile.model}, ipc={ipc}")
        ax.set_xlabel("distillation iteration")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--quick", action="store_true", help="same as --profile quick")
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--out", default=None, help="folder for the JSON/PNG (default benchmarks/results)")
    parser.add_argument("--cache", default=None, help="folder for experts and runs (default: user cache)")
    args = parser.parse_args(argv)
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    profile = PROFILES["quick" if args.quick else args.profile]
    out = output_dir(args.out)
    root = Path(args.cache) if args.cache else cache_root(profile)
    root.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    started = time.perf_counter()
    data = load_data(profile, args.data_path)
    buffers = ensure_experts(profile, data, root, log)
    records, baselines = [], {}
    for ipc in profile.ipcs:
        baselines[ipc] = random_baseline(profile, data, ipc)
        log(f"random real subset ipc={ipc}: {100 * baselines[ipc]['mean']:.2f}%")
        for seed in profile.seeds:
            for method in profile.methods:
                records.append(run_one(profile, data, buffers, method, ipc, seed, root, log))
    analysis = analyse(records, baselines, profile)
    experts = {**json.loads((buffers / "COMPLETE").read_text()), "final_test_acc": expert_accuracies(buffers, profile, data)}
    payload = {"benchmark": "convergence", "profile": dataclasses.asdict(profile), **provenance(),
               "experts": experts, "analysis": analysis, "runs": records,
               "wall_seconds": time.perf_counter() - started}
    write_json(out / f"convergence_{profile.name}.json", payload)
    plot(analysis, profile, out / f"convergence_{profile.name}.png")
    log(f"wrote {out / f'convergence_{profile.name}.json'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
