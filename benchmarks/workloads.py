"""The measured workloads of the benchmarks, as importable functions.

Each returns a JSON-serialisable dict. The scripts run them in a fresh interpreter
(``python -m benchmarks.workloads NAME ARG...`` prints the dict as one JSON line), so that the
peak resident memory (VmHWM) and the allocator setting belong to that workload alone; ``--quick``
smoke tests call them in-process (:func:`_common.run_workload`).
"""

from __future__ import annotations

import json
import sys
import time
from functools import cache
from pathlib import Path


@cache
def components():
    """The registries of the installed plugins, built once per benchmark process."""
    from mct_plugin.harness.api import build_components

    return build_components()


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM), in MB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fashion_mnist(test_subset: str = "0"):
    """Fashion-MNIST; with ``test_subset`` (quick runs) only that many of its first test images."""
    import dataclasses

    from mct_plugin.harness.data import load_dataset

    data = load_dataset(components().datasets.get("FashionMNIST"))
    count = int(test_subset)
    return dataclasses.replace(data, test_images=data.test_images[:count], test_labels=data.test_labels[:count]) \
        if count else data


def expert_epoch(model_name: str, subset: str, augmentation: str = "crop_scale_rotate", test_subset: str = "0") -> dict:
    """One epoch of expert training (train pass + test pass) on Fashion-MNIST (``test_subset``: see
    :func:`fashion_mnist`)."""
    import torch

    from mct_plugin.harness.training import test_accuracy, train_epoch

    data = fashion_mnist(test_subset)
    if int(subset):
        data = data.train_subset(int(subset))
    torch.manual_seed(0)
    model = components().models.create(model_name, 1, 10, (28, 28))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    augment = components().expert_augmentations.get(augmentation)((28, 28))
    t0 = time.perf_counter()
    train_epoch(model, data.train_images, data.train_labels, optimizer, 256, augment)
    t1 = time.perf_counter()
    _, acc = test_accuracy(model, data.test_images, data.test_labels, batch_size=256)
    t2 = time.perf_counter()
    return {"train_s": t1 - t0, "test_s": t2 - t1, "images": len(data.train_images), "test_acc": acc}


def distill_iterations(matcher: str, mode: str, model: str, ipc: str, steps: str, iterations: str, buffers: str,
                       out: str) -> dict:
    """Seconds per distillation iteration (the first, warm-up iteration excluded) and peak RSS."""
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.distill import Distillation

    config = DistillConfig(matcher=matcher, gradient_mode=mode, model=model, ipc=int(ipc), syn_steps=int(steps),
                           expert_epochs=2, max_start_epoch=5, iterations=int(iterations), eval_it=0,
                           buffer_path=buffers, out=out, checkpoint_every=1000)
    result = Distillation(config, components=components(), overwrite=True, show_progress=False).run()
    seconds = [r["seconds"] for r in result.rows if "seconds" in r][1:]
    return {"seconds_per_iteration": sum(seconds) / len(seconds) if seconds else None,
            "iterations_timed": len(seconds), "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def evaluation(model: str, ipc: str, epochs: str, num_eval: str, how: str, test_subset: str = "0") -> dict:
    """Seconds to train and test ``num_eval`` networks on a random real subset (``test_subset``: see
    :func:`fashion_mnist`)."""
    from mct_plugin.harness.config import EvalSettings
    from mct_plugin.harness.eval.batched import evaluate_set_batched
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset

    data = fashion_mnist(test_subset)
    x, y = random_real_subset(data, int(ipc), seed=0)
    config = EvalSettings(num_eval=int(num_eval), epoch_eval_train=int(epochs))
    fn = evaluate_set_batched if how == "batched" else evaluate_set
    t = time.perf_counter()
    result = fn(x, y, 0.01, data, model, config, models=components().models)
    return {"seconds": time.perf_counter() - t, "mean": result.mean, "std": result.std}


def convert(*args: str) -> dict:
    """``dd-harness convert --to mct ARGS --quiet``: exit status, seconds and peak RSS."""
    from mct_plugin.harness.cli import main

    start = time.perf_counter()
    code = main(["convert", "--to", "mct", *args, "--quiet"])
    return {"exit": code, "seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def distill_command(*args: str) -> dict:
    """``dd-harness distill ARGS --quiet``: exit status and peak RSS (the metrics are in the run)."""
    from mct_plugin.harness.cli import main

    import torch

    code = main(["distill", *args, "--quiet"])
    if code != 0:
        raise SystemExit(f"dd-harness distill failed with status {code}")
    gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"exit": code, "peak_rss_mb": peak_rss_mb(), "peak_gpu_gb": gpu}


def precision_parts(precision: str, device: str, dataset: str, data_path: str, model: str, buffers: str, out: str,
                    size: str) -> dict:
    """Every part that trains networks, at ``precision`` on ``device``: the seconds and peak CUDA
    memory (None off CUDA) of an expert epoch (training and test pass, after one untimed epoch), an
    evaluation (networks trained on a random real subset) and distillation iterations (MTT, on the
    experts in ``buffers``, runs in ``out``) in the ``unrolled`` and ``checkpointed`` gradient modes.
    ``size``: ``full`` (ipc 10, 300 evaluation epochs x 2 networks, syn_steps 20, 5 iterations) or
    ``smoke`` (toy sizes); ``data_path`` "" for the dataset's default. ``ran`` is the precision
    that ran (fp32 where the device has no native bf16)."""
    import statistics

    import torch

    from mct_plugin.harness.config import DistillConfig, EvalSettings
    from mct_plugin.harness.data import load_dataset
    from mct_plugin.harness.distill import Distillation
    from mct_plugin.harness.eval.protocol import evaluate_set, random_real_subset
    from mct_plugin.harness.runtime.devices import resolve_device
    from mct_plugin.harness.runtime.precision import resolve_precision
    from mct_plugin.harness.training import test_accuracy, train_epoch

    full = size == "full"
    where = resolve_device(device)
    ran = resolve_precision(precision, where, "--precision")
    data = load_dataset(components().datasets.get(dataset), data_path or None).to(where)
    spec = data.spec
    parts: dict = {}

    def measure(name: str, work) -> None:
        if where.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        figures = work()
        if where.type == "cuda":
            torch.cuda.synchronize()
        parts[name] = {"seconds": time.perf_counter() - started, **figures,
                       "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if where.type == "cuda" else None}

    def expert_epoch() -> dict:
        torch.manual_seed(0)
        net = components().models.create(model, spec.channels, data.num_classes, spec.image_size).to(where)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        augment = components().expert_augmentations.get("crop_scale_rotate")(spec.image_size)
        train_epoch(net, data.train_images, data.train_labels, optimizer, 256, augment, ran)
        return {"test_acc": test_accuracy(net, data.test_images, data.test_labels, 256, precision=ran)[1]}

    def evaluation() -> dict:
        images, labels = random_real_subset(data, 10 if full else 1, seed=0)
        settings = EvalSettings(num_eval=2 if full else 1, epoch_eval_train=300 if full else 1, eval_precision=ran)
        return {"mean": evaluate_set(images, labels, 0.01, data, model, settings, models=components().models).mean}

    def distillation(mode: str) -> dict:
        config = DistillConfig(matcher="mtt", gradient_mode=mode, model=model, dataset=dataset,
                               data_path=data_path or None, device=device, buffer_path=buffers, out=f"{out}/{mode}",
                               ipc=10 if full else 1, syn_steps=20 if full else 2, expert_epochs=2 if full else 1,
                               max_start_epoch=2 if full else 1, iterations=5 if full else 2, eval_it=0,
                               checkpoint_every=1000, student_precision=precision)
        rows = Distillation(config, components=components(), data=data, overwrite=True, show_progress=False).run().rows
        seconds = [r["seconds"] for r in rows if "seconds" in r][1:]  # the first iteration warms up
        return {"seconds_per_iteration": statistics.median(seconds)}

    expert_epoch()  # warm-up: the device's kernels for this precision are chosen on first use
    measure("expert epoch", expert_epoch)
    measure("evaluation", evaluation)
    for mode in ("unrolled", "checkpointed"):
        measure(f"distill {mode}", lambda: distillation(mode))
    return {"precision": precision, "ran": ran, "device": str(where), "parts": parts, "peak_rss_mb": peak_rss_mb()}


def initial_images(target: str, *args: str) -> dict:
    """The images ``dd-harness distill ARGS`` starts from, built exactly as that run builds them
    (its config, its seed, its draws before the first update), saved to ``target``; nothing is
    distilled (the run directory ``--out`` is prepared and left)."""
    from mct_plugin.harness.cli import build_parser, normalise_argv
    from mct_plugin.harness.cli._options import resolved
    from mct_plugin.harness.distill import Distillation
    from mct_plugin.harness.io.atomic import atomic_torch_save

    parsed = build_parser(components()).parse_args(normalise_argv(["distill", *args]))
    run = Distillation(resolved(parsed, components()), components=components(), overwrite=True, show_progress=False)
    try:
        atomic_torch_save(run.synthetic.images.detach().cpu().clone(), target)
    finally:
        run.close()
    return {"images": target, "peak_rss_mb": peak_rss_mb()}


def imports_only() -> dict:
    """The interpreter with everything ``convert`` imports, converting nothing: the baseline that
    the converter's peak RSS is compared with."""
    import mct_plugin.harness.cli  # noqa: F401
    import mct_plugin.mct.converter  # noqa: F401

    return {"peak_rss_mb": peak_rss_mb()}


WORKLOADS = {f.__name__: f for f in (expert_epoch, distill_iterations, evaluation, convert, distill_command,
                                    precision_parts, initial_images, imports_only)}


if __name__ == "__main__":
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    print(json.dumps(WORKLOADS[sys.argv[1]](*sys.argv[2:])))
