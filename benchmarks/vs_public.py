"""Our ``distill`` against the public MTT ``distill.py``, run side by side on this machine.

The speed targets of the project are ratios to the public code's seconds per iteration. A
reference figure measured on another day can drift with the machine; this script measures both
programs in one session, alternating them, on the same random-walk expert buffer (ConvNet,
Fashion-MNIST shapes), the same hyper-parameters (syn_steps, expert_epochs, batch_syn = all
images, DSA on) and the same thread count.

With ``--experts`` it also times one epoch of expert training: the public ``buffer.py`` (its
default DSA augmentation) against ours with DSA and with our default ``crop_scale_rotate``.

The public code is not part of this project: pass the folder of your own checkout of
https://github.com/GeorgeCazenavette/mtt-distillation with ``--public-repo``. It runs unmodified
(its own files are read, never written) inside a small launcher that

* replaces ``wandb`` by a module that records nothing (no account, no network);
* gives its ``get_dataset`` a Fashion-MNIST branch (it has none) reading the IDX files that the
  project uses, through torchvision's ``FashionMNIST`` class;
* makes ``Tensor.cuda`` a no-op on CPU (it saves images through ``.cuda()``);
* flattens the ConvNet features with ``reshape`` (its ``view`` fails on torch >= 2.x CPU tensors);
* records the time of every synthetic-image optimizer step (``distill.py``) and of every pass over
  the data (``buffer.py``, the expert training).

The first iteration of each program (with the public code's evaluation at iteration 0, reduced to
one network for two epochs) is not timed. Peak RSS is the whole process's ``VmHWM``.

With ``--accuracy`` it runs whole distillations side by side on the experts of the MCT study
(``mct_study.py``; ConvNetW32, 30 epochs on Fashion-MNIST), with the same hyper-parameters and
budget: the public MCT code (``exps/trajectory_compression.py`` then ``distill_compressed.py``, from
``--mct-repo``, at its defaults: P=4, first-order gradient, continuous sampling) against
``--matcher mct`` with our defaults, and the public MTT ``distill.py`` against ``--matcher mtt``.
Every program's synthetic sets at the evaluation points are evaluated with one protocol (ours:
5 networks x 300 epochs, the same network seeds for the same seed index): the launcher saves the
sets the public code would evaluate instead of running its evaluation. Reported per program: the
loss curve, the accuracy at every evaluation point (>= 3 seeds; the public code cannot be seeded,
so its runs are repetitions), seconds per iteration and peak RSS; and the difference of the final
accuracies (ours - public) with a 95% interval (Welch).

With ``--gradient-modes unrolled,checkpointed,first-order`` our side runs once per gradient mode, and
``--memory-only`` runs one iteration per program and records peak memory only (a memory figure does
not depend on a shared CPU; a time would): the parts are then named ``ipcN-sSTEPS-memory`` and never
replace a timed part. Where the graph of every step would not fit this machine, neither the public
code nor ``unrolled`` is started (the row says so).

The public code imports scipy (``pip install scipy`` in the environment that runs this script).

Usage: ``python -m benchmarks.vs_public --public-repo DIR [--ipc 1,10] [--experts] [--iterations 6] [--repeats 2]``
or ``python -m benchmarks.vs_public --public-repo MTT_DIR --mct-repo MCT_DIR --ipc '' --accuracy [--seeds 3]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from ._common import components, output_dir, provenance, run_parts, run_workload
from .speed import unrolled_does_not_fit, unrolled_estimate_gb, write_random_walk_buffer



def fashion_mnist_root(directory: Path) -> Path:
    """A torchvision ``FashionMNIST`` root (uncompressed IDX files) made from the project's data."""
    from mct_plugin.harness.data.datasets import DEBIAN_FASHION_MNIST

    raw = directory / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(DEBIAN_FASHION_MNIST / f"{stem}.gz") as source, open(raw / stem, "wb") as target:
            shutil.copyfileobj(source, target)
    return directory


def launch_public(repo: Path, script: str, ipc: int, args: list[str]) -> dict:
    launcher = Path(__file__).resolve().parent / "public_launcher.py"
    proc = subprocess.run([sys.executable, str(launcher), str(repo), script, str(ipc), *args], capture_output=True,
                          text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"the public {script} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_public(repo: Path, ipc: int, steps: int, iterations: int, buffers: Path, data: Path) -> dict:
    args = ["--dataset", "FashionMNIST", "--model", "ConvNet", "--ipc", str(ipc), "--syn_steps", str(steps),
            "--expert_epochs", "2", "--max_start_epoch", "5", "--lr_teacher", "0.01", "--Iteration", str(iterations),
            "--eval_it", "100000", "--num_eval", "1", "--epoch_eval_train", "2", "--buffer_path", str(buffers),
            "--data_path", str(data)]
    result = launch_public(repo, "distill.py", ipc, args)
    return {"seconds": result["seconds"][1:], "peak_rss_mb": result["peak_rss_mb"]}  # [0] holds the evaluation


def run_ours(ipc: int, steps: int, iterations: int, buffers: Path, out: Path, mode: str = "unrolled") -> dict:
    result = run_workload("distill_iterations", "mtt", mode, "ConvNet", str(ipc), str(steps), str(iterations + 1),
                        str(buffers), str(out))
    return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}


def measure_experts(repo: Path, data: Path, buffers: Path, repeats: int) -> dict:
    """One epoch of expert training (ConvNet, full Fashion-MNIST, batch 256, lr 0.01): the public
    buffer.py with its default DSA augmentation vs ours with DSA and with our default
    crop_scale_rotate; train pass and test pass timed separately."""
    runs: dict[str, list[dict]] = {"public (dsa)": [], "ours (dsa)": [], "ours (crop_scale_rotate)": []}
    for repeat in range(repeats):
        result = launch_public(repo, "buffer.py", 1, [
            "--dataset", "FashionMNIST", "--model", "ConvNet", "--num_experts", "1", "--train_epochs", "1",
            "--buffer_path", str(buffers / "public_experts"), "--data_path", str(data)])
        train = [s for mode, s in result["epochs"] if mode == "train"]
        test = [s for mode, s in result["epochs"] if mode == "test"]
        runs["public (dsa)"].append({"train_s": train[0], "test_s": test[0]})
        for augmentation in ("dsa", "crop_scale_rotate"):
            ours = run_workload("expert_epoch", "ConvNet", "0", augmentation)
            runs[f"ours ({augmentation})"].append({"train_s": ours["train_s"], "test_s": ours["test_s"]})
        for name, results in runs.items():
            print(f"experts {name} run {repeat + 1}: train {results[-1]['train_s']:.1f} s, "
                  f"test {results[-1]['test_s']:.1f} s", flush=True)
    row = {"model": "ConvNet", "batch_train": 256}
    for name, results in runs.items():
        row[name] = {key: statistics.median(r[key] for r in results) for key in ("train_s", "test_s")}
        row[name]["epoch_s"] = row[name]["train_s"] + row[name]["test_s"]
        row[name]["runs"] = len(results)
    for name in ("ours (dsa)", "ours (crop_scale_rotate)"):
        row[f"time_ratio {name}"] = row[name]["epoch_s"] / row["public (dsa)"]["epoch_s"]
    return row


# -- accuracy side by side (--accuracy) -------------------------------------------------------------
ACCURACY = {"ipc": 1, "syn_steps": 20, "expert_epochs": 2, "max_start_epoch": 10, "lr_img": 1000.0, "lr_lr": 1e-5,
            "lr_teacher": 0.01, "iterations": 300, "eval_every": 50, "num_eval": 5, "epoch_eval_train": 300}


def _study_experts(log) -> Path:
    """The MCT study's experts (trained and cached by mct_study.py if missing): the buffer folder."""
    from .mct_study import STUDIES, cache_root, ensure_experts, load_data

    study = STUDIES["cpu"]
    root = cache_root(study)
    root.mkdir(parents=True, exist_ok=True)
    return ensure_experts(study, load_data(study), root, log) / "FashionMNIST" / study.model


def _public_args(script: str, settings: dict, buffers: Path, data: Path, model: str) -> list[str]:
    common = ["--dataset", "FashionMNIST", "--model", model, "--buffer_path", str(buffers), "--data_path", str(data)]
    if script.endswith("trajectory_compression.py"):
        return common + ["--num_interpolation", "4"]
    return common + ["--ipc", str(settings["ipc"]), "--syn_steps", str(settings["syn_steps"]), "--expert_epochs",
                     str(settings["expert_epochs"]), "--max_start_epoch", str(settings["max_start_epoch"]),
                     "--lr_img", str(settings["lr_img"]), "--lr_lr", str(settings["lr_lr"]), "--lr_teacher",
                     str(settings["lr_teacher"]), "--Iteration", str(settings["iterations"]), "--eval_it",
                     str(settings["eval_every"]), "--num_eval", "1"]


def _evaluate_captured(paths: list[str], seed: int, settings: dict, data, model: str) -> list[dict]:
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.protocol import evaluate_set

    points = []
    for k, path in enumerate(paths):
        captured = torch_load(path)
        result = evaluate_set(captured["images"], captured["labels"], captured["lr"], data, model,
                              EvalSettings(num_eval=settings["num_eval"], epoch_eval_train=settings["epoch_eval_train"],
                                           seed=seed), models=components().models)
        points.append({"iteration": k * settings["eval_every"], "mean": result.mean, "accs": result.accuracies,
                       "lr": captured["lr"]})
    return points


def torch_load(path):
    import torch

    return torch.load(path, weights_only=True)


def run_public_distillation(repo: Path, script: str, settings: dict, buffers: Path, data_root: Path, work: Path,
                            seed: int, data, model: str) -> dict:
    capture = work / f"capture_{Path(script).stem}_{seed}"
    capture.mkdir(parents=True)
    env_backup = os.environ.get("DD_CAPTURE_DIR")
    os.environ["DD_CAPTURE_DIR"] = str(capture)
    try:
        result = launch_public(repo, script, settings["ipc"], _public_args(script, settings, buffers, data_root, model))
    finally:
        os.environ.pop("DD_CAPTURE_DIR") if env_backup is None else os.environ.update(DD_CAPTURE_DIR=env_backup)
    losses = [row["Grand_Loss"] for row in result["logged"] if "Grand_Loss" in row]
    return {"seconds_per_iteration": statistics.median(result["seconds"]), "peak_rss_mb": result["peak_rss_mb"],
            "loss": losses, "evals": _evaluate_captured(result["captured"], seed, settings, data, model)}


# What the public programs compute: MTT's exact gradient; MCT's first-order gradient on P=4 waypoints at
# the public spacing with its smoothing (explicit, as our MCT default is the exact gradient).
SAME_METHOD = {"mtt": ["--gradient-mode", "unrolled"],
               "mct": ["--gradient-mode", "first-order", "--waypoints", "4", "--waypoint-spacing", "public",
                       "--smooth", "public"]}


def run_our_distillation(matcher: str, settings: dict, buffers: Path, out: Path, seed: int, model: str) -> dict:
    args = ["--matcher", matcher, *SAME_METHOD[matcher], "--model", model, "--buffer-path", str(buffers), "--out", str(out), "--seed",
            str(seed), "--ipc", str(settings["ipc"]), "--syn-steps", str(settings["syn_steps"]), "--expert-epochs",
            str(settings["expert_epochs"]), "--max-start-epoch", str(settings["max_start_epoch"]), "--lr-img",
            str(settings["lr_img"]), "--lr-lr", str(settings["lr_lr"]), "--lr-teacher", str(settings["lr_teacher"]),
            "--iterations", str(settings["iterations"]), "--eval-it", str(settings["eval_every"]), "--num-eval",
            str(settings["num_eval"]), "--epoch-eval-train", str(settings["epoch_eval_train"])]
    result = run_workload("distill_command", *args)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"seconds_per_iteration": statistics.median(r["seconds"] for r in rows if "seconds" in r),
            "peak_rss_mb": result["peak_rss_mb"], "loss": [r["loss"] for r in rows if "loss" in r],
            "evals": [{"iteration": r["iteration"], "mean": r["eval_acc_mean"], "accs": r["eval_accs"],
                       "lr": r.get("alpha")} for r in rows if "eval_acc_mean" in r]}


def welch_interval(a: list[float], b: list[float]) -> dict:
    """mean(a) - mean(b) with a 95% Welch interval."""
    import math

    from .mct_study import T_975

    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else len(a) + len(b) - 2
    half = T_975.get(max(1, int(df)), 1.96) * math.sqrt(va + vb)
    return {"difference": ma - mb, "low": ma - mb - half, "high": ma - mb + half, "df": df}


def measure_accuracy(mtt_repo: Path, mct_repo: Path, seeds: int, log) -> dict:
    from .mct_study import STUDIES, load_data

    study = STUDIES["cpu"]
    data = load_data(study)
    settings = dict(ACCURACY)
    experts = _study_experts(log)
    pairs = {"mct": (mct_repo, "distill_compressed.py"), "mtt": (mtt_repo, "distill.py")}
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_root = fashion_mnist_root(tmp / "data")
        scratch = tmp / "buffers" / "FashionMNIST" / study.model  # the public code writes next to the buffers
        scratch.mkdir(parents=True)
        for path in sorted(experts.glob("replay_buffer_*.pt")):
            shutil.copy(path, scratch / path.name)
        log("public MCT: compressing the trajectories (exps/trajectory_compression.py --num_interpolation 4)")
        launch_public(mct_repo, "exps/trajectory_compression.py", 1,
                      _public_args("exps/trajectory_compression.py", settings, tmp / "buffers", data_root, study.model))
        for method, (repo, script) in pairs.items():
            for seed in range(seeds):
                for program in ("public", "ours"):
                    if program == "public":
                        record = run_public_distillation(repo, script, settings, tmp / "buffers", data_root, tmp,
                                                         seed, data, study.model)
                    else:
                        record = run_our_distillation(method, settings, experts, tmp / f"ours_{method}_{seed}", seed,
                                                      study.model)
                    results.setdefault(method, {}).setdefault(program, []).append(record)
                    log(f"{method} {program} seed {seed}: final {100 * record['evals'][-1]['mean']:.2f}%, "
                        f"{record['seconds_per_iteration']:.2f} s/it, peak {record['peak_rss_mb']:.0f} MB")
    summary = {}
    for method, programs in results.items():
        finals = {program: [r["evals"][-1]["mean"] for r in runs] for program, runs in programs.items()}
        summary[method] = {
            program: {"final_mean": statistics.fmean(v), "final_std": statistics.pstdev(v),
                      "best_mean": statistics.fmean(max(p["mean"] for p in r["evals"]) for r in programs[program]),
                      "seconds_per_iteration": statistics.median(r["seconds_per_iteration"] for r in programs[program]),
                      "peak_rss_mb": max(r["peak_rss_mb"] for r in programs[program])}
            for program, v in finals.items()}
        summary[method]["ours_minus_public"] = welch_interval(finals["ours"], finals["public"])
    return {"settings": settings, "model": study.model, "experts": str(experts.name), "seeds": seeds,
            "runs": results, "summary": summary}


def plot_accuracy(part: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mct_plugin.harness.io.atomic import atomic_path

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, method in enumerate(("mct", "mtt")):
        for program, colour in (("public", "tab:grey"), ("ours", "tab:red")):
            runs = part["runs"][method][program]
            xs = [p["iteration"] for p in runs[0]["evals"]]
            means = [statistics.fmean(100 * r["evals"][i]["mean"] for r in runs) for i in range(len(xs))]
            stds = [statistics.pstdev(100 * r["evals"][i]["mean"] for r in runs) for i in range(len(xs))]
            axes[0][col].plot(xs, means, "o-", color=colour, label=f"{program} ({len(runs)} runs)")
            axes[0][col].fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                                      color=colour, alpha=0.2)
            for r in runs:
                window = 10
                loss = [statistics.fmean(r["loss"][max(0, i - window):i + 1]) for i in range(len(r["loss"]))]
                axes[1][col].plot(loss, color=colour, alpha=0.6, lw=0.8)
            axes[1][col].plot([], [], color=colour, label=program)
        axes[0][col].set_title(f"{method.upper()}: accuracy (mean +- std over runs)")
        axes[0][col].set_xlabel("iteration")
        axes[0][col].set_ylabel("test accuracy (%)")
        axes[1][col].set_title(f"{method.upper()}: matching loss (moving mean of 10)")
        axes[1][col].set_xlabel("iteration")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--public-repo", required=True, type=Path,
                        help="a checkout of GeorgeCazenavette/mtt-distillation (distill.py, utils.py, networks.py)")
    parser.add_argument("--mct-repo", type=Path, default=None,
                        help="a checkout of Zhong0x29a/MCT (distill_compressed.py, exps/trajectory_compression.py), "
                             "for --accuracy")
    parser.add_argument("--ipc", default="1,10", help="distillation ipcs to compare ('' for none)")
    parser.add_argument("--experts", action="store_true", help="also compare one epoch of expert training")
    parser.add_argument("--accuracy", action="store_true",
                        help="whole distillations side by side: public MCT vs ours, public MTT vs ours")
    parser.add_argument("--seeds", type=int, default=3, help="runs per program with --accuracy")
    parser.add_argument("--syn-steps", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=6, help="timed iterations per run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each program")
    parser.add_argument("--gradient-modes", default="unrolled",
                        help="our gradient modes to run against the public distill.py, comma-separated "
                             "(unrolled computes what the public code computes)")
    parser.add_argument("--memory-only", action="store_true",
                        help="one iteration per program, peak memory only (no time: for a shared CPU)")
    parser.add_argument("--out", default=None, help="folder for vs_public.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    modes = [m for m in args.gradient_modes.split(",") if m]
    repo = args.public_repo.expanduser().resolve()
    missing = [name for name in ("distill.py", "utils.py", "networks.py", "reparam_module.py")
               if not (repo / name).is_file()]
    if missing:
        parser.error(f"{repo} is not a checkout of the public MTT code (missing {', '.join(missing)})")
    mct_repo = args.mct_repo.expanduser().resolve() if args.mct_repo else None
    if args.accuracy and (mct_repo is None or not (mct_repo / "distill_compressed.py").is_file()
                          or not (mct_repo / "exps" / "trajectory_compression.py").is_file()):
        parser.error("--accuracy needs --mct-repo pointing at a checkout of the public MCT code "
                     "(distill_compressed.py, exps/trajectory_compression.py)")
    # no local paths in the results (provenance reads sys.argv)
    placeholders = {str(args.public_repo): "MTT_REPO", str(args.mct_repo): "MCT_REPO"}
    shown = []
    for a in (argv if argv is not None else sys.argv[1:]):
        key, eq, value = a.partition("=")
        if eq and key in ("--public-repo", "--mct-repo"):
            a = f"{key}={'MTT_REPO' if key == '--public-repo' else 'MCT_REPO'}"
        shown.append(placeholders.get(a, a))
    sys.argv[1:] = shown
    selected = [int(x) for x in args.ipc.split(",") if x]

    def log(message: str) -> None:
        print(message, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = fashion_mnist_root(tmp / "data")
        buffers = tmp / "buffers"
        write_random_walk_buffer(buffers, "ConvNet", epochs=10)

        def measure(ipc: int, quick: bool) -> dict:
            # "ours" is the unrolled gradient (what the public code computes); other modes are "ours MODE"
            programs = ["public"] + ["ours" if mode == "unrolled" else f"ours {mode}" for mode in modes]
            runs: dict[str, list[dict]] = {name: [] for name in programs}
            iterations = 0 if args.memory_only else args.iterations
            # the public code keeps every step's graph like unrolled: neither runs where that cannot fit
            too_big = unrolled_does_not_fit(unrolled_estimate_gb("ConvNet", ipc, args.syn_steps), "a full graph")
            skipped = {name: too_big for name in programs if too_big and name in ("public", "ours")}
            for name in skipped:
                print(f"ipc={ipc} {name}: skipped ({too_big})", flush=True)
            for repeat in range(1 if args.memory_only else args.repeats):
                for name in programs:
                    if name in skipped:
                        continue
                    if name == "public":
                        result = run_public(repo, ipc, args.syn_steps, iterations + 1, buffers, data)
                    else:
                        mode = name.partition(" ")[2] or "unrolled"
                        result = run_ours(ipc, args.syn_steps, iterations, buffers, tmp / "run", mode)
                    runs[name].append(result)
                    timing = "" if args.memory_only else f"median {statistics.median(result['seconds']):.2f} s/it, "
                    print(f"ipc={ipc} {name} run {repeat + 1}: {timing}peak {result['peak_rss_mb']:.0f} MB", flush=True)
            row = {"ipc": ipc, "syn_steps": args.syn_steps, "expert_epochs": 2, "model": "ConvNet",
                   "threads": os.environ.get("OMP_NUM_THREADS", "default"), "memory_only": args.memory_only}
            for name, results in runs.items():
                if name in skipped:
                    row[name] = {"skipped": skipped[name]}
                    continue
                row[name] = {"runs": len(results), "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
                seconds = [s for r in results for s in r["seconds"]]
                if seconds and not args.memory_only:
                    row[name].update(median_s=statistics.median(seconds), mean_s=statistics.fmean(seconds),
                                     min_s=min(seconds), max_s=max(seconds), iterations_timed=len(seconds))
            for name in programs[1:] if "public" not in skipped else ():
                if name in skipped:
                    continue
                suffix = name.partition(" ")[2]
                key = f"_{suffix}" if suffix else ""
                if not args.memory_only:
                    row[f"time_ratio{key}"] = row[name]["median_s"] / row["public"]["median_s"]
                row[f"memory_ratio{key}"] = row[name]["peak_rss_mb"] / row["public"]["peak_rss_mb"]
                timing = "" if args.memory_only else f"{row[name]['median_s']:.2f} s/it vs public " \
                    f"{row['public']['median_s']:.2f} ({row[f'time_ratio{key}']:.2f}x time), "
                print(f"ipc={ipc}: {name} {timing}{row[name]['peak_rss_mb']:.0f} MB vs public "
                      f"{row['public']['peak_rss_mb']:.0f} MB ({row[f'memory_ratio{key}']:.2f}x memory)", flush=True)
            return row

        def accuracy(quick: bool) -> dict:
            part = measure_accuracy(repo, mct_repo, args.seeds, log)
            plot_accuracy(part, output_dir(args.out) / "vs_public_accuracy.png")
            return part

        # one part per ipc: a later run of one ipc keeps the others' rows and provenance
        # a memory-only measurement (shared CPU) is its own part: it never replaces a timed one
        suffix = f"-s{args.syn_steps}-memory" if args.memory_only else ""
        parts = {f"ipc{ipc}{suffix}": partial(measure, ipc) for ipc in sorted({1, 10, *selected})}
        parts["experts"] = lambda quick: measure_experts(repo, data, buffers, args.repeats)
        parts["accuracy"] = accuracy
        chosen = [f"ipc{ipc}{suffix}" for ipc in selected] + (["experts"] if args.experts else []) + \
            (["accuracy"] if args.accuracy else [])
        if not chosen:
            parser.error("nothing to measure: give --ipc, --experts and/or --accuracy")
        run_parts(output_dir(args.out) / "vs_public.json", parts, ",".join(chosen), False,
                  {"benchmark": "vs_public", **provenance()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
