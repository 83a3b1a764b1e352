"""Speed and memory: expert training, distillation iterations, evaluation.

Every workload runs in a fresh subprocess, so its peak resident memory (VmHWM) is its own.

* experts: one epoch of expert training (train pass with the crop_scale_rotate augmentation +
  test pass) for ConvNet on Fashion-MNIST, with and without the allocator tuning;
* distill: seconds per iteration and peak RSS of ``dd-harness distill`` for both matchers and both
  gradient modes, at several ``syn_steps`` and ``ipc`` (experts: random-walk trajectories with the
  model's shapes - the cost of an iteration does not depend on the values);
* eval: seconds to train and test ``num_eval`` networks, sequentially vs batched with vmap;
* allocator: the time/memory trade of the allocator tuning for an unrolled MTT distillation
  (ConvNet, ipc=10, syn_steps 20), with ``DD_HARNESS_MALLOC_TUNING`` on and off.

``--quick`` runs tiny workloads in this process (a smoke test of the script, not a measurement).

Usage: ``python -m benchmarks.speed [--quick] [--only experts,distill,eval,allocator] [--out DIR]``
"""

from __future__ import annotations

import argparse
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


def bench_experts(quick: bool) -> list[dict]:
    model, subset = ("ConvNetW16", 1000) if quick else ("ConvNet", 0)
    rows = []
    for tuning in ("1", "0"):
        result = run_workload("expert_epoch", model, str(subset), env={"DD_HARNESS_MALLOC_TUNING": tuning},
                              in_process=quick)
        result.update(model=model, allocator_tuning=tuning == "1",
                      images_per_s=result["images"] / result["train_s"], epoch_s=result["train_s"] + result["test_s"])
        rows.append(result)
        print(f"experts {model} tuning={tuning}: {result['epoch_s']:.1f} s/epoch "
              f"({result['images_per_s']:.0f} img/s train, test pass {result['test_s']:.1f} s)", flush=True)
    return rows


def bench_distill(quick: bool) -> list[dict]:
    if quick:
        model, grid, iters = "ConvNetW16", [("mtt", "unrolled", 1, 5), ("mct", "constant-memory", 1, 5)], 3
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


def bench_allocator(quick: bool) -> list[dict]:
    """Always in subprocesses: the tuning is applied once per process and cannot be undone."""
    model, ipc, steps, iters = ("ConvNetW16", 1, 5, 3) if quick else ("ConvNet", 10, 20, 4)
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
    grid = [("ConvNetW16", 1, 5, 3)] if quick else [("ConvNetW32", 1, 300, 5), ("ConvNetW32", 10, 300, 5),
                                                    ("ConvNet", 1, 300, 5), ("ConvNet", 10, 50, 5)]
    rows = []
    for model, ipc, epochs, num_eval in grid:
        for how in ("sequential", "batched"):
            result = run_workload("evaluation", model, str(ipc), str(epochs), str(num_eval), how, in_process=quick)
            result.update(model=model, ipc=ipc, epochs=epochs, num_eval=num_eval, how=how)
            rows.append(result)
            print(f"eval {model} ipc={ipc} {epochs} epochs x {num_eval} nets {how}: {result['seconds']:.1f} s", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, seconds)")
    parser.add_argument("--only", default="experts,distill,eval,allocator")
    parser.add_argument("--out", default=None, help="folder for speed.json (default benchmarks/results)")
    args = parser.parse_args(argv)
    out = output_dir(args.out)
    sections = {"experts": bench_experts, "distill": bench_distill, "eval": bench_eval, "allocator": bench_allocator}
    payload = {"benchmark": "speed", "quick": args.quick, **provenance()}
    run_parts(out / "speed.json", sections, args.only, args.quick, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
