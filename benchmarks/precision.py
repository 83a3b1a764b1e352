"""bf16 against fp32 on this machine: what it costs (``speed``) and how exact it is (``fidelity``).

``speed`` (run it alone: a timing): the issue-32 micro-measurements, median of repeats in one
process: a ConvNet (width 128) training step on 256 Fashion-MNIST images, and a student step (the
gradient with ``create_graph=True``, then the gradient of its norm to 10 input images), each in
fp32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)`` forced on, whether or not the CPU
has native bf16 (``bf16_autocast_supported`` is recorded: without it autocast emulates bf16).

``fidelity`` (not a timing): the student's gradient of one distillation iteration (images and
alpha; ConvNet width 128, real Fashion-MNIST images as the synthetic set, a target 0.01 away from
a fresh initialisation, DSA as in a run) at syn_steps 20 and 80, ipc 1 and 10, under bf16 autocast
and in fp32, each against a float64 reference of the same problem (the same drawn minibatches
and augmentations): relative error and cosine.

``cpu_options`` (run it alone: a timing): channels_last, ``torch.compile`` and 1 against 2 threads
for the steps that train without a double backward (an expert's, an evaluation network's), each
against plain fp32 in the same process.

Usage: ``python -m benchmarks.precision [--parts speed,fidelity,cpu_options] [--quick]``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

from ._common import output_dir, run_parts
from .workloads import components


def _fashion(n: int, seed: int = 0):
    from mct_plugin.harness.api import load_dataset

    data = load_dataset(components().datasets.get("FashionMNIST"))
    return data, data.balanced_indices(max(1, n // data.num_classes))


def _timed(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(quick: bool) -> dict:
    import torch
    import torch.nn.functional as F

    from mct_plugin.harness.runtime.precision import bf16_autocast_supported

    repeats = 2 if quick else 10
    model_name = "ConvNetW16" if quick else "ConvNet"
    data, index = _fashion(256)
    x, y = data.train_images[index], data.train_labels[index]
    torch.manual_seed(0)
    net = components().models.create(model_name, 1, 10, (28, 28))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)

    def train_step(bf16: bool):
        def step():
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
        return step

    images = x[:10].clone().requires_grad_(True)
    params = list(net.parameters())

    def student_step(bf16: bool):
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(images), y[:10])
            grads = torch.autograd.grad(loss, params, create_graph=True)
            norm = sum((g.float() ** 2).sum() for g in grads)
            torch.autograd.grad(norm, images)
        return step

    result = {"model": model_name, "threads": torch.get_num_threads(), "repeats": repeats,
              "bf16_native": bf16_autocast_supported(torch.device("cpu")),
              "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    for part, make in (("expert_step_256", train_step), ("student_step_10", student_step)):
        fp32, bf16 = _timed(make(False), repeats), _timed(make(True), repeats)
        result[part] = {"fp32_s": fp32, "bf16_s": bf16, "bf16_over_fp32": bf16 / fp32}
        print(f"{part}: fp32 {fp32:.4f} s, bf16 {bf16:.4f} s ({bf16 / fp32:.2f}x)", flush=True)
    return result


def cpu_options(quick: bool) -> dict:
    """What else a CPU run could use (issue 32 item 2), each against plain fp32 in the same process:
    channels_last memory format, ``torch.compile`` (inductor; for the networks that train without a
    double backward: experts and evaluation), and 1 against 2 threads. Two steps: an expert's
    (ConvNet width 128, 256 images) and an evaluation network's at ipc=10 (100 images)."""
    import torch
    import torch.nn.functional as F

    repeats = 2 if quick else 10
    model_name = "ConvNetW16" if quick else "ConvNet"
    data, index = _fashion(256)
    threads = torch.get_num_threads()

    def network(channels_last: bool):
        torch.manual_seed(0)
        net = components().models.create(model_name, 1, 10, (28, 28))
        return net.to(memory_format=torch.channels_last) if channels_last else net

    def train_step(net, batch: int, channels_last: bool):
        x, y = data.train_images[index[:batch]], data.train_labels[index[:batch]]
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)

        def step():
            optimizer.zero_grad()
            F.cross_entropy(net(x), y).backward()
            optimizer.step()
        return step

    result = {"model": model_name, "threads": threads, "repeats": repeats}
    for part, batch in (("expert_step_256", 256), ("eval_step_100", 100)):
        row = {}
        row["fp32_s"] = _timed(train_step(network(False), batch, False), repeats)
        row["channels_last_s"] = _timed(train_step(network(True), batch, True), repeats)
        compiled = torch.compile(network(False))
        first = train_step(compiled, batch, False)
        started = time.perf_counter()
        first()  # compiles
        row["compile_first_call_s"] = time.perf_counter() - started
        row["compiled_s"] = _timed(first, repeats)
        torch.set_num_threads(1)
        try:
            row["one_thread_s"] = _timed(train_step(network(False), batch, False), repeats)
        finally:
            torch.set_num_threads(threads)
        for key in ("channels_last_s", "compiled_s", "one_thread_s"):
            row[key.removesuffix("_s") + "_over_fp32"] = row[key] / row["fp32_s"]
        result[part] = row
        print(f"{part}: fp32 {row['fp32_s']:.4f} s ({threads} threads), channels_last {row['channels_last_s']:.4f} s, "
              f"compiled {row['compiled_s']:.4f} s (first call {row['compile_first_call_s']:.1f} s), 1 thread "
              f"{row['one_thread_s']:.4f} s", flush=True)
    return result


def _gradient(model_name: str, images, labels, syn_steps: int, precision: str, dtype, seed: int):
    import torch

    from mct_plugin.harness.api import FunctionalModel, StudentProblem, draw_steps, normalised_distance
    from mct_plugin.harness.augment import DifferentiableAugmentation
    from mct_plugin.harness.distill.gradient_modes import Unrolled

    torch.manual_seed(seed)
    module = components().models.create(model_name, 1, 10, (28, 28)).to(dtype)
    model = FunctionalModel(module)
    start = model.initial_flat()
    target = start + 0.01 * torch.randn(start.shape, generator=torch.Generator().manual_seed(seed + 1)).to(dtype)
    pixels = images.to(dtype).clone().requires_grad_(True)
    lr = torch.tensor(0.01, dtype=dtype, requires_grad=True)
    augment = DifferentiableAugmentation((28, 28))
    torch.manual_seed(seed + 2)  # the same drawn minibatches and augmentations in every precision
    steps = draw_steps(pixels.shape, len(pixels), syn_steps, augment)
    problem = StudentProblem(model, start, lambda theta: normalised_distance(theta, start, target), pixels, labels, lr,
                             syn_steps=syn_steps, batch_syn=len(pixels), augment=augment, steps=steps,
                             precision=precision)
    result = Unrolled().run(problem)
    return result.images_grad.double(), result.lr_grad.double(), float(result.loss)


def fidelity(quick: bool, ipcs: tuple[int, ...] = (1, 10)) -> dict:
    import torch

    model_name = "ConvNetW16" if quick else "ConvNet"
    rows = []
    for ipc in ((1,) if quick else ipcs):
        data, index = _fashion(10 * ipc)
        images, labels = data.train_images[index], data.train_labels[index]
        for syn_steps in ((2,) if quick else (20, 80)):
            reference = _gradient(model_name, images, labels, syn_steps, "fp32", torch.float64, 0)
            for precision in ("fp32", "bf16"):
                images_grad, lr_grad, loss = _gradient(model_name, images, labels, syn_steps, precision, torch.float32, 0)
                row = {"ipc": ipc, "syn_steps": syn_steps, "precision": precision,
                       "images_relative_error": float((images_grad - reference[0]).norm() / reference[0].norm()),
                       "images_cosine": float(torch.nn.functional.cosine_similarity(
                           images_grad.flatten(), reference[0].flatten(), dim=0)),
                       "alpha_relative_error": float(abs(lr_grad - reference[1]) / abs(reference[1])),
                       "loss_relative_error": abs(loss - reference[2]) / abs(reference[2])}
                rows.append(row)
                print(f"ipc {ipc} syn_steps {syn_steps} {precision}: images rel err {row['images_relative_error']:.2e} "
                      f"cos {row['images_cosine']:.5f}, alpha rel err {row['alpha_relative_error']:.2e}", flush=True)
    return {"model": model_name, "rows": rows}


PARTS = {"speed": speed, "fidelity": fidelity, "cpu_options": cpu_options}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="speed,fidelity")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--ipcs", default="1,10", help="the fidelity part's images per class (bf16 is emulated on a CPU "
                                                       "without AVX512_BF16: ipc 10 x 80 steps takes long there)")
    parser.add_argument("--out", default=None, help="folder for the JSON (default benchmarks/results)")
    args = parser.parse_args(argv)
    parts = {**PARTS, "fidelity": functools.partial(fidelity, ipcs=tuple(int(i) for i in args.ipcs.split(",")))}
    run_parts(output_dir(args.out) / ("precision_quick.json" if args.quick else "precision.json"), parts, args.parts,
              args.quick, {"benchmark": "precision"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
