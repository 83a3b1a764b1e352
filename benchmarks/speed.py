"""Speed and memory: expert training, distillation iterations, evaluation.

Every workload runs in a fresh subprocess, so its peak resident memory (VmHWM) is its own.

* experts: one epoch of expert training (train pass with the crop_scale_rotate augmentation +
  test pass) for ConvNet on Fashion-MNIST, with and without the allocator tuning;
* distill: seconds per iteration and peak RSS of ``dd-harness distill`` for both matchers and both
  gradient modes, at several ``syn_steps`` and ``ipc`` (experts: random-walk trajectories with the
  model's shapes - the cost of an iteration does not depend on the values);
* gradients-ipc1 / -ipc10 / -ipc50 / -resnet18: the three gradient modes (``unrolled``,
  ``checkpointed``, ``first-order``; MTT) at syn_steps 20, 40 and 80 on ConvNet (and ResNet-18 at
  ipc 1), with the automatic choice's estimate of unrolled's graph; an unrolled cell whose estimate
  would not fit in the machine's memory (24 GB) is skipped and recorded as such. The same parts with
  ``-memory`` appended (``gradients-ipc50-memory``) run one iteration per cell and record peak RSS
  alone: memory can be measured while the CPU is shared, time cannot. ``--syn-steps 20,40``
  restricts a part to some of its syn_steps, ``--modes`` to some gradient modes;
* eval: seconds to train and test ``num_eval`` networks, sequentially vs batched with vmap;
* allocator: the time/memory trade of the allocator tuning for an unrolled MTT distillation
  (ConvNet, ipc=10, syn_steps 20), with ``DD_HARNESS_MALLOC_TUNING`` on and off.

``--quick`` runs tiny workloads in this process, testing on 500 test images (a smoke test of the script,
not a measurement).

Usage: ``python -m benchmarks.speed [--quick] [--only experts,distill,eval,allocator,gradients-ipc1,...]
[--syn-steps 20,40] [--modes checkpointed] [--out DIR]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

from ._common import components, output_dir, provenance, random_walk_trajectory, run_parts, run_workload


def write_random_walk_buffer(directory: Path, model: str, epochs: int, experts: int = 2) -> Path:
    """An MTT buffer with the shapes of ``model`` (random walks from a fresh initialisation)."""
    from mct_plugin.harness.experts.buffers import save_replay_buffer

    target = directory / components().datasets.get("FashionMNIST").buffer_subdir(model, False)
    trajectories = [random_walk_trajectory(model, epochs, seed=e) for e in range(experts)]
    save_replay_buffer(trajectories, target / "replay_buffer_0.pt")
    return directory


QUICK_TEST_SUBSET = 500  # --quick tests on the first 500 test images (a smoke test, not a measurement)


def bench_experts(quick: bool) -> list[dict]:
    model, subset, test_subset = ("ConvNetW16", 500, QUICK_TEST_SUBSET) if quick else ("ConvNet", 0, 0)
    rows = []
    for tuning in ("1", "0"):
        result = run_workload("expert_epoch", model, str(subset), "crop_scale_rotate", str(test_subset),
                              env={"DD_HARNESS_MALLOC_TUNING": tuning}, in_process=quick)
        result.update(model=model, allocator_tuning=tuning == "1",
                      images_per_s=result["images"] / result["train_s"], epoch_s=result["train_s"] + result["test_s"])
        rows.append(result)
        print(f"experts {model} tuning={tuning}: {result['epoch_s']:.1f} s/epoch "
              f"({result['images_per_s']:.0f} img/s train, test pass {result['test_s']:.1f} s)", flush=True)
    return rows


def bench_distill(quick: bool) -> list[dict]:
    if quick:
        model, grid, iters = "ConvNetW16", [("mtt", "unrolled", 1, 2), ("mct", "constant-memory", 1, 2)], 2
    else:
        model, iters = "ConvNet", 4
        grid = [("mtt", "unrolled", 1, 20), ("mtt", "unrolled", 10, 20)]
        grid += [("mct", mode, ipc, steps) for ipc in (1, 10) for steps in (10, 20, 40)
                 for mode in ("unrolled", "constant-memory")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        buffers = write_random_walk_buffer(Path(tmp) / "buffers", model, epochs=10)
        for matcher, mode, ipc, steps in grid:
            result = run_workload("distill_iterations", matcher, mode, model, str(ipc), str(steps), str(iters),
                                  str(buffers), str(Path(tmp) / "run"), in_process=quick)
            result.update(matcher=matcher, gradient_mode=mode, model=model, ipc=ipc, syn_steps=steps)
            rows.append(result)
            print(f"distill {matcher} {mode} ipc={ipc} syn_steps={steps}: {result['seconds_per_iteration']:.2f} s/it, "
                  f"peak {result['peak_rss_mb']:.0f} MB", flush=True)
    return rows


GRADIENT_MODES = ("unrolled", "checkpointed", "first-order")
MACHINE_MEMORY_GB = 24
# measured peak RSS of unrolled runs / the estimate of their graph (RESULTS.md: 1.2-1.3 at ipc 10),
# and the share of the machine a cell may take without risking the OOM killer
ESTIMATE_SLACK, MACHINE_SHARE = 1.3, 0.9
GRADIENT_PARTS = {  # part -> (model, ipcs, syn_steps, iterations per cell incl. the untimed first one)
    "gradients-ipc1": ("ConvNet", (1,), (20, 40, 80), 4),
    "gradients-ipc10": ("ConvNet", (10,), (20, 40, 80), 3),
    "gradients-ipc50": ("ConvNet", (50,), (20, 40, 80), 2),
    "gradients-resnet18": ("ResNet18", (1,), (20, 40, 80), 2),
}


def unrolled_estimate_gb(model: str, ipc: int, steps: int) -> float:
    """The automatic choice's estimate of unrolled's graph for this cell (one measured step)."""
    import torch

    from mct_plugin.harness.augment import DifferentiableAugmentation
    from mct_plugin.harness.distill.gradient_modes import StudentProblem
    from mct_plugin.harness.distill.memory import step_graph_bytes
    from mct_plugin.harness.models import FunctionalModel

    net = FunctionalModel(components().models.create(model, 1, 10, (28, 28)))
    start = net.initial_flat()
    images = torch.randn(10 * ipc, 1, 28, 28, requires_grad=True)
    problem = StudentProblem(net, start, lambda theta: theta.sum(), images, torch.arange(10).repeat(ipc),
                             torch.tensor(0.01, requires_grad=True), steps, 10 * ipc,
                             DifferentiableAugmentation((28, 28)))
    return (steps + 1) * step_graph_bytes(problem) / 2**30


def unrolled_does_not_fit(estimate_gb: float, program: str = "unrolled") -> str | None:
    """Why a program that keeps every step's graph (``unrolled``, the public ``distill.py``) is not run
    at this estimate, or None when it fits this machine."""
    if estimate_gb * ESTIMATE_SLACK <= MACHINE_SHARE * MACHINE_MEMORY_GB:
        return None
    return (f"{program} would peak at ~{estimate_gb * ESTIMATE_SLACK:.0f} GB (graph estimate {estimate_gb:.1f} GB x "
            f"{ESTIMATE_SLACK}), more than this {MACHINE_MEMORY_GB} GB machine can give")


def bench_gradients(part: str, quick: bool, memory_only: bool = False, only_steps: tuple[int, ...] | None = None,
                    only_modes: tuple[str, ...] | None = None) -> list[dict]:
    model, ipcs, steps_list, iters = GRADIENT_PARTS[part]
    steps_list = tuple(s for s in steps_list if s in only_steps) if only_steps else steps_list
    modes = tuple(m for m in GRADIENT_MODES if m in only_modes) if only_modes else GRADIENT_MODES
    if quick:
        model, ipcs, steps_list, iters = "ConvNetW16", (1,), (3, 6), 2
    iters = 1 if memory_only else iters
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        buffers = write_random_walk_buffer(Path(tmp) / "buffers", model, epochs=10)
        for ipc in ipcs:
            for steps in steps_list:
                estimate = unrolled_estimate_gb(model, ipc, steps)
                for mode in modes:
                    cell = dict(matcher="mtt", gradient_mode=mode, model=model, ipc=ipc, syn_steps=steps,
                                unrolled_estimate_gb=estimate, memory_only=memory_only)
                    too_big = unrolled_does_not_fit(estimate)
                    if mode == "unrolled" and too_big:
                        rows.append({**cell, "skipped": too_big})
                        print(f"{part} {mode} ipc={ipc} syn_steps={steps}: skipped ({rows[-1]['skipped']})", flush=True)
                        continue
                    # one ipc=50 x 80-step iteration takes most of an hour of a shared 2-core CPU
                    result = run_workload("distill_iterations", "mtt", mode, model, str(ipc), str(steps), str(iters),
                                          str(buffers), str(Path(tmp) / "run"), in_process=quick, timeout=6 * 3600)
                    if memory_only:
                        result.pop("seconds_per_iteration", None), result.pop("seconds", None)
                    rows.append({**cell, **result})
                    timing = "" if memory_only else f"{result['seconds_per_iteration']:.2f} s/it, "
                    print(f"{part} {mode} ipc={ipc} syn_steps={steps}: {timing}peak {result['peak_rss_mb']:.0f} MB "
                          f"(unrolled estimate {estimate:.2f} GB)", flush=True)
    return rows


def gradient_cells(payload: dict) -> dict[tuple, dict]:
    """``(model, ipc, syn_steps) -> {mode: row}`` over every gradients part; a timed row is
    preferred to a memory-only one of the same cell, and a cell where unrolled was not asked for but
    could not have run gets its ``skipped`` row."""
    cells: dict[tuple, dict] = {}
    for part in sorted(k for k in payload if k.startswith("gradients-")):
        for row in payload[part]:
            modes = cells.setdefault((row["model"], row["ipc"], row["syn_steps"]), {})
            kept = modes.get(row["gradient_mode"])
            if kept is None or (kept.get("memory_only") and not row.get("memory_only")) or "skipped" in kept:
                modes[row["gradient_mode"]] = row
    for modes in cells.values():  # a part run without unrolled (--modes) still knows whether it could have run
        some = next(iter(modes.values()))
        reason = "unrolled" not in modes and unrolled_does_not_fit(some["unrolled_estimate_gb"])
        if reason:
            modes["unrolled"] = {**some, "gradient_mode": "unrolled", "skipped": reason}
            for measured in ("peak_rss_mb", "seconds_per_iteration", "seconds"):
                modes["unrolled"].pop(measured, None)
    return dict(sorted(cells.items(), key=lambda kv: (kv[0][0] != "ConvNet", kv[0][0], kv[0][1], kv[0][2])))


def plot_gradient_memory(payload: dict, path: Path) -> None:
    """Peak RSS against syn_steps per gradient mode, one panel per model and ipc."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mct_plugin.harness.io.atomic import atomic_path

    cells = gradient_cells(payload)
    panels = sorted({(model, ipc) for model, ipc, _ in cells}, key=lambda p: (p[0] != "ConvNet", p))
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    colours = {"unrolled": "tab:red", "checkpointed": "tab:blue", "first-order": "tab:grey"}
    for ax, (model, ipc) in zip(axes[0], panels):
        for mode in GRADIENT_MODES:
            points = [(steps, modes[mode]) for (m, i, steps), modes in cells.items()
                      if (m, i) == (model, ipc) and mode in modes]
            measured = [(s, r["peak_rss_mb"] / 1024) for s, r in points if "peak_rss_mb" in r]
            if measured:
                ax.plot(*zip(*measured), "o-", color=colours[mode], label=mode)
            estimated = [(s, r["unrolled_estimate_gb"] * ESTIMATE_SLACK) for s, r in points
                         if mode == "unrolled" and "skipped" in r]
            if estimated:
                ax.plot(*zip(*estimated), "x--", color=colours[mode], label="unrolled (estimated, does not fit)")
        ax.axhline(MACHINE_MEMORY_GB, ls=":", lw=0.8, color="black", label=f"this machine ({MACHINE_MEMORY_GB} GB)")
        ax.set_title(f"{model}, ipc={ipc}", fontsize=9)
        ax.set_xlabel("syn_steps")
        ax.set_ylabel("peak RSS (GB)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def bench_allocator(quick: bool) -> list[dict]:
    """Always in subprocesses: the tuning is applied once per process and cannot be undone."""
    model, ipc, steps, iters = ("ConvNetW16", 1, 2, 2) if quick else ("ConvNet", 10, 20, 4)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        buffers = write_random_walk_buffer(Path(tmp) / "buffers", model, epochs=10)
        for tuning in ("1", "0"):
            result = run_workload("distill_iterations", "mtt", "unrolled", model, str(ipc), str(steps), str(iters),
                                  str(buffers), str(Path(tmp) / "run"), env={"DD_HARNESS_MALLOC_TUNING": tuning})
            result.update(matcher="mtt", gradient_mode="unrolled", model=model, ipc=ipc, syn_steps=steps,
                          allocator_tuning=tuning == "1")
            rows.append(result)
            print(f"distill ipc={ipc} tuning={tuning}: {result['seconds_per_iteration']:.2f} s/it, "
                  f"peak {result['peak_rss_mb']:.0f} MB", flush=True)
    return rows


def bench_eval(quick: bool) -> list[dict]:
    grid = [("ConvNetW16", 1, 2, 2)] if quick else [("ConvNetW32", 1, 300, 5), ("ConvNetW32", 10, 300, 5),
                                                    ("ConvNet", 1, 300, 5), ("ConvNet", 10, 50, 5)]
    rows = []
    for model, ipc, epochs, num_eval in grid:
        for how in ("sequential", "batched"):
            result = run_workload("evaluation", model, str(ipc), str(epochs), str(num_eval), how,
                                  str(QUICK_TEST_SUBSET if quick else 0), in_process=quick)
            result.update(model=model, ipc=ipc, epochs=epochs, num_eval=num_eval, how=how)
            rows.append(result)
            print(f"eval {model} ipc={ipc} {epochs} epochs x {num_eval} nets {how}: {result['seconds']:.1f} s", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, seconds)")
    parser.add_argument("--only", default="experts,distill,eval,allocator")
    parser.add_argument("--syn-steps", default=None, help="gradients parts: only these syn_steps, comma-separated")
    parser.add_argument("--modes", default=None,
                        help=f"gradients parts: only these gradient modes, comma-separated ({', '.join(GRADIENT_MODES)})")
    parser.add_argument("--out", default=None, help="folder for speed.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    only_modes = tuple(args.modes.split(",")) if args.modes else None
    unknown = sorted(set(only_modes or ()) - set(GRADIENT_MODES))
    if unknown:
        parser.error(f"--modes: unknown gradient mode(s) {', '.join(unknown)} (choose from {', '.join(GRADIENT_MODES)})")
    out = output_dir(args.out)
    sections = {"experts": bench_experts, "distill": bench_distill, "eval": bench_eval, "allocator": bench_allocator}
    only_steps = tuple(int(s) for s in args.syn_steps.split(",")) if args.syn_steps else None
    restrict = dict(only_steps=only_steps, only_modes=only_modes)
    for part in GRADIENT_PARTS:
        sections[part] = functools.partial(bench_gradients, part, **restrict)
        sections[part + "-memory"] = functools.partial(bench_gradients, part, memory_only=True, **restrict)
    payload = {"benchmark": "speed", "quick": args.quick, **provenance()}
    payload = run_parts(out / "speed.json", sections, args.only, args.quick, payload)
    if any(name.startswith("gradients-") for name in args.only.split(",")):
        plot_gradient_memory(payload, out / "gradient_memory.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
