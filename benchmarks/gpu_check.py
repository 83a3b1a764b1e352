"""GPU readiness of the paper profile: every step of the pipeline on one CUDA device, timed.

1. toy pipeline on the device: ``experts`` -> ``convert --to mct`` -> ``distill --matcher mct``
   with every gradient mode (first-order, unrolled, checkpointed) -> the same distillation under
   ``torchrun`` with 1 process (NCCL) -> ``eval``; every output is checked to be finite;
2. the CIFAR-10-shaped paper profile (recipe ``mct/cifar10-ipc1``: ConvNet, syn_steps 60,
   expert_epochs 6, P=4, first-order gradient) for 200 iterations, on CIFAR-10 if ``--cifar-path``
   holds it, else on random images of CIFAR-10's shape (a dataset the check registers as a plugin:
   the timing and memory are what matter here, not the accuracy);
3. the peak GPU memory (``torch.cuda.max_memory_allocated``) of each gradient mode on a long
   student rollout (MTT, ipc 10, syn_steps 80, on the paper profile's experts), printed per mode;
4. every part that trains networks at each precision (``fp32``, ``bf16``; one fresh process per
   precision, :func:`benchmarks.workloads.precision_parts`): an expert epoch, an evaluation (ipc
   10, 300 epochs, 2 networks) and distillation iterations in the ``unrolled`` and ``checkpointed``
   modes (ipc 10, syn_steps 20), on the paper profile's model and experts; the time and peak GPU
   memory of every part printed per precision, with bf16's time as a fraction of fp32's;
5. a report (``gpu_check.json``): device, seconds of every step, seconds per iteration and peak
   GPU memory of the paper profile and of every gradient mode, every part per precision, and
   whether the run's modules and generators were on the GPU.

Sized to finish in under 8 minutes on one H100/H200-class GPU (``gpu_check.sh`` holds it to that
budget). ``--cpu-smoke`` runs the same steps at toy size on the CPU (gloo instead of NCCL, a
100-image Fashion-MNIST folder, 100 CIFAR-shaped images, one or two iterations per run): what the
test suite runs, with no time limit of its own; its steps run in this process (the same command
lines through the same entry points, one interpreter start instead of eleven, so its peak memories
are this process's), all but ``torchrun``, which starts its own.

Usage: ``bash benchmarks/gpu_check.sh [--cifar-path DIR] [--out DIR]`` (or
``python -m benchmarks.gpu_check`` from the repository root).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from ._common import output_dir, provenance, write_json

HERE = Path(__file__).resolve().parent
SHAPES_PLUGIN = '''
"""Random images of CIFAR-10's shape (3x32x32, 10 classes) with a class-dependent mean: a stand-in
for CIFAR-10 where it cannot be downloaded, for timing and memory checks only."""
import os

import torch
from mct_plugin.harness.api import DatasetSpec, RawSplits, hookimpl

TRAIN, TEST = (int(n) for n in os.environ.get("CIFAR_SHAPES_SIZES", "5000,1000").split(","))


def shapes(data_path, download):
    generator = torch.Generator().manual_seed(0)

    def split(n):
        labels = torch.arange(n) % 10
        base = (labels.float() * 20 + 30).view(n, 1, 1, 1)
        images = (base + 40 * torch.randn(n, 3, 32, 32, generator=generator)).clamp(0, 255).to(torch.uint8)
        return images, labels

    train, test = split(TRAIN), split(TEST)
    return RawSplits(*train, *test, "random CIFAR-10-shaped images")


@hookimpl
def dd_register_datasets():
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    return [DatasetSpec("CIFAR10Shapes", 3, (32, 32), 10, mean, std, shapes)]
'''


def mini_fashion_mnist(folder: Path, per_class: int = 10, test: int = 50) -> Path:
    """A ``--data-path`` folder with ``per_class`` real training images of every class and the first
    ``test`` test images of Fashion-MNIST (IDX files), for the CPU smoke run."""
    import gzip

    import numpy as np

    from mct_plugin.harness.data.datasets import DEBIAN_FASHION_MNIST
    from mct_plugin.harness.data.idx import read_idx

    def write(name: str, array) -> None:
        array = np.ascontiguousarray(array, dtype=np.uint8)
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        (folder / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes(), mtime=0))

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = (read_idx(DEBIAN_FASHION_MNIST / f"{s}.gz") for s in ("train-images-idx3-ubyte",
                                                                             "train-labels-idx1-ubyte"))
    index = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    write("train-images-idx3-ubyte", images[index])
    write("train-labels-idx1-ubyte", labels[index])
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        write(stem, read_idx(DEBIAN_FASHION_MNIST / f"{stem}.gz")[:test])
    return folder


def install_shapes_plugin(site: Path) -> dict:
    """A test-local distribution with the dataset above; returns the environment that finds it."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "cifar_shapes_plugin.py").write_text(SHAPES_PLUGIN)
    info = site / "cifar_shapes_plugin-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cifar_shapes_plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dd_harness]\ncifarshapes = cifar_shapes_plugin\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def run_here(command: list[str]) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` (the CLI or a workload) in this process, as a subprocess would
    report it: exit status, stdout (a workload's result as one JSON line), stderr."""
    from mct_plugin.harness.cli import main

    from .workloads import WORKLOADS

    module, args = command[2], command[3:]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if module == "mct_plugin.harness.cli":
                code = main(args)
            else:
                print(json.dumps(WORKLOADS[args[0]](*args[1:])))
                code = 0
        except SystemExit as stop:  # argparse's errors, a workload's failure message
            code = stop.code if isinstance(stop.code, int) else 1
            if not isinstance(stop.code, int):
                print(stop.code, file=sys.stderr)
        except Exception:  # a step's failure is reported like a crashed program's
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())


def run(steps: dict, name: str, command: list[str], env: dict, timeout: int | None = None,
        in_process: bool = False) -> subprocess.CompletedProcess:
    """Run one step (``timeout``: only on the accelerator, where a hung step must not eat the budget;
    ``in_process``: the CPU smoke run, see :func:`run_here`)."""
    started = time.perf_counter()
    proc = run_here(command) if in_process else subprocess.run(command, capture_output=True, text=True, env=env,
                                                               timeout=timeout)
    steps[name] = {"seconds": round(time.perf_counter() - started, 2), "exit": proc.returncode}
    print(f"{name}: exit {proc.returncode} in {steps[name]['seconds']} s", flush=True)
    if proc.returncode != 0:
        steps[name]["stderr"] = proc.stderr[-2000:]
        print(proc.stderr[-2000:], file=sys.stderr, flush=True)
    return proc


GRADIENT_MODES = ("first-order", "unrolled", "checkpointed")
PRECISIONS = ("fp32", "bf16")


def measure(steps: dict, name: str, distill_args: list[str], env: dict, timeout: int | None, out: Path,
            in_process: bool = False) -> dict | None:
    """``dd-harness distill ARGS`` as a step, in a fresh process that reports its peak memory
    (``torch.cuda.max_memory_allocated`` on a GPU, VmHWM); the outputs must be finite."""
    proc = run(steps, name, [sys.executable, "-m", "benchmarks.workloads", "distill_command", *distill_args], env,
               timeout, in_process)
    if proc.returncode != 0:
        return None
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    steps[name].update(finite=finite_outputs(out), peak_gpu_gb=measured["peak_gpu_gb"],
                       peak_rss_mb=measured["peak_rss_mb"])
    return {"peak_gpu_gb": measured["peak_gpu_gb"], "peak_rss_mb": measured["peak_rss_mb"]}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mct_plugin.harness.cli", *args]


def finite_outputs(run_dir: Path) -> bool:
    import torch

    return all(torch.isfinite(torch.load(run_dir / name, weights_only=True)).all() for name in ("images.pt", "lr.pt"))


def device_probe(device: str) -> dict:
    """Whether a run's pieces live on ``device``: the student, the data, the synthetic set, the
    augmentation modules and the evaluation network."""
    import torch

    from mct_plugin.harness.augment import DifferentiableAugmentation
    from mct_plugin.harness.api import build_components

    augment = DifferentiableAugmentation((32, 32)).to(device)
    x = torch.randn(4, 3, 32, 32, device=device, requires_grad=True)
    out = augment(x)
    net = build_components().models.create("ConvNet", 3, 10, (32, 32)).to(device)
    return {"augmentation_output_device": str(out.device), "network_device": str(next(net.parameters()).device),
            "cuda_available": torch.cuda.is_available(),
            "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}


def precision_pass(steps: dict, device: str, dataset: str, data_path: str, model: str, tmp: Path, size: str,
                   env: dict, timeout: int | None, in_process: bool) -> dict:
    """Every part that trains networks at each precision (a step per precision, see
    :func:`benchmarks.workloads.precision_parts`, on the experts in ``tmp/paper``); prints each
    part's time and peak GPU memory, and bf16's time as a fraction of fp32's. Returns
    ``{precision: the workload's report}``."""
    measured = {}
    for precision in PRECISIONS:
        proc = run(steps, f"precision {precision}", [
            sys.executable, "-m", "benchmarks.workloads", "precision_parts", precision, device, dataset, data_path,
            model, str(tmp / "paper"), str(tmp / f"precision_{precision}"), size], env, timeout, in_process)
        if proc.returncode != 0:
            continue
        measured[precision] = json.loads(proc.stdout.strip().splitlines()[-1])
        for part, figures in measured[precision]["parts"].items():
            memory = figures["peak_gpu_gb"]
            print(f"precision {precision} (ran {measured[precision]['ran']}) {part:20s}: {figures['seconds']:.2f} s, "
                  f"peak GPU memory {'-' if memory is None else f'{memory:.2f}'} GB", flush=True)
    if set(measured) == set(PRECISIONS):
        for part, figures in measured["fp32"]["parts"].items():
            print(f"{part:20s}: bf16 takes {measured['bf16']['parts'][part]['seconds'] / figures['seconds']:.2f}x "
                  f"the time of fp32", flush=True)
    return measured


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar-path", default=None, help="a torchvision CIFAR-10 root (default: random images)")
    parser.add_argument("--cpu-smoke", action="store_true", help="toy sizes on the CPU (what the tests run)")
    parser.add_argument("--out", default=None, help="folder for gpu_check.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    import torch

    device = "cpu" if args.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a machine with a GPU, or pass --cpu-smoke")
    steps: dict = {}
    report = {"benchmark": "gpu_check", **provenance(), "device": device, "probe": device_probe(device)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = install_shapes_plugin(tmp / "site")
        limit = None if args.cpu_smoke else 600
        if args.cpu_smoke:  # toy data: the smoke checks that every step runs, not how fast
            env["CIFAR_SHAPES_SIZES"] = "100,50"
            os.environ["CIFAR_SHAPES_SIZES"] = "100,50"  # the steps run here: the plugin is found here too
            sys.path.insert(0, str(tmp / "site"))
            data = ["--data-path", str(mini_fashion_mnist(tmp / "fmnist"))]
        else:
            data = []
        toy = ["--model", "ConvNetW32" if not args.cpu_smoke else "ConvNetW16", "--device", device]
        sizes = ["--num-experts", "1", "--train-epochs", "3"] if args.cpu_smoke else \
            ["--num-experts", "2", "--train-epochs", "4", "--subset", "2000"]
        run(steps, "experts", cli("experts", *toy, *data, *sizes, "--buffer-path", str(tmp / "buffers"), "--quiet"),
            env, limit, args.cpu_smoke)
        folder = tmp / "buffers" / "FashionMNIST" / toy[1]
        run(steps, "convert", cli("convert", "--to", "mct", str(folder), "--out", str(tmp / "mct"), "--quiet"), env,
            limit, args.cpu_smoke)
        toy_iterations = "2" if args.cpu_smoke else "10"
        distill = ["distill", "--matcher", "mct", *toy, *data, "--buffer-path", str(tmp / "mct"), "--iterations",
                   toy_iterations, "--syn-steps", "2" if args.cpu_smoke else "5", "--expert-epochs", "1",
                   "--max-start-epoch", "2", "--eval-it", toy_iterations, "--num-eval", "1",
                   "--epoch-eval-train", "1" if args.cpu_smoke else "20", "--quiet"]
        for mode in GRADIENT_MODES:
            measure(steps, f"distill {mode}", [*distill[1:], "--gradient-mode", mode, "--out", str(tmp / mode)], env,
                    limit, tmp / mode, args.cpu_smoke)
        backend = "gloo" if args.cpu_smoke else "nccl"
        run(steps, f"torchrun 1 process ({backend})",
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", "-m",
             "mct_plugin.harness.cli", *distill, "--out", str(tmp / "torchrun")], env, limit)
        run(steps, "eval", cli("eval", "--run-dir", str(tmp / "first-order"), "--num-eval", "1",
                               "--epoch-eval-train", "1" if args.cpu_smoke else "20", "--device", device), env, limit,
            args.cpu_smoke)
        # the paper profile, CIFAR-10-shaped
        dataset = ["--dataset", "CIFAR10", "--data-path", args.cifar_path] if args.cifar_path else \
            ["--dataset", "CIFAR10Shapes"]
        model = "ConvNet" if not args.cpu_smoke else "ConvNetW16"
        epochs, iterations = (8, 200) if not args.cpu_smoke else (3, 2)
        run(steps, "paper experts", cli("experts", *dataset, "--model", model, "--device", device, "--num-experts",
                                        "1", "--train-epochs", str(epochs), "--buffer-path", str(tmp / "paper"),
                                        "--quiet"), env, limit, args.cpu_smoke)
        paper_out = tmp / "paper_run"
        steps_override = [] if not args.cpu_smoke else ["--syn-steps", "2", "--expert-epochs", "1",
                                                        "--max-start-epoch", "1"]
        proc = run(steps, "paper profile", [sys.executable, "-m", "benchmarks.workloads", "distill_command",
            "--recipe", "mct/cifar10-ipc1", *dataset, "--model", model, "--device", device,
            "--buffer-path", str(tmp / "paper"), "--out", str(paper_out), "--iterations", str(iterations),
            "--eval-it", "0", "--max-start-epoch", "1" if args.cpu_smoke else "2", *steps_override], env, None if args.cpu_smoke else 900,
            args.cpu_smoke)
        if proc.returncode == 0:
            measured = json.loads(proc.stdout.strip().splitlines()[-1])
            rows = [json.loads(line) for line in (paper_out / "metrics.jsonl").read_text().splitlines()]
            seconds = sorted(r["seconds"] for r in rows if "seconds" in r)
            report["paper_profile"] = {"iterations": iterations, "model": model, "dataset": dataset[1],
                                       "recipe": "mct/cifar10-ipc1",
                                       "median_seconds_per_iteration": seconds[len(seconds) // 2],
                                       "peak_gpu_gb": measured["peak_gpu_gb"], "peak_rss_mb": measured["peak_rss_mb"],
                                       "finite": finite_outputs(paper_out)}
        # peak memory of every gradient mode on a long student rollout (ipc 10, syn_steps 80 on the GPU)
        ipc, syn_steps = ("10", "80") if not args.cpu_smoke else ("1", "2")
        report["gradient_memory"] = {"ipc": int(ipc), "syn_steps": int(syn_steps), "model": model, "modes": {}}
        for mode in GRADIENT_MODES:
            out = tmp / f"memory_{mode}"
            measured = measure(steps, f"memory {mode}", [
                "--matcher", "mtt", *dataset, "--model", model, "--device", device, "--buffer-path", str(tmp / "paper"),
                "--out", str(out), "--ipc", ipc, "--syn-steps", syn_steps, "--expert-epochs", "1",
                "--max-start-epoch", "1", "--iterations", "1" if args.cpu_smoke else "3", "--eval-it", "0",
                "--gradient-mode", mode], env,
                limit, out, args.cpu_smoke)
            if measured:
                report["gradient_memory"]["modes"][mode] = measured
                print(f"gradient mode {mode:12s} ipc={ipc} syn_steps={syn_steps}: peak GPU memory "
                      f"{measured['peak_gpu_gb'] if measured['peak_gpu_gb'] is not None else '-'} GB, peak RSS "
                      f"{measured['peak_rss_mb'] / 1024:.2f} GB", flush=True)
        report["precision"] = precision_pass(steps, device, dataset[1], args.cifar_path or "", model, tmp,
                                             "smoke" if args.cpu_smoke else "full", env, limit, args.cpu_smoke)
    report["steps"] = steps
    report["all_passed"] = all(s["exit"] == 0 and s.get("finite", True) for s in steps.values())
    path = output_dir(args.out) / ("gpu_check.json" if not args.cpu_smoke else "gpu_check_cpu_smoke.json")
    write_json(path, report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=1, default=str))
    return 0 if report["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
