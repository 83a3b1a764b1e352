"""Distillation iterations per second with 1 and 2 processes (torchrun, gloo on CPU).

With N processes each iteration matches N segments (a meta-batch of N) and averages their
gradients, so the useful figure is *segments per second*. On this 2-core machine the processes
compete for the same cores (each gets one thread), so the speed-up is bounded; on N GPUs every
rank has its own device and the all-reduce of one image-sized gradient per iteration is small
next to the N unrolled student trajectories.

Usage: ``python -m benchmarks.distributed [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ._common import ROOT, output_dir, provenance, write_json
from .speed import write_random_walk_buffer


def run(nproc: int, buffers: Path, out: Path, model: str, ipc: int, steps: int, iterations: int) -> dict:
    args = ["distill", "--matcher", "mtt", "--model", model, "--buffer-path", str(buffers), "--out", str(out),
            "--ipc", str(ipc), "--syn-steps", str(steps), "--expert-epochs", "2", "--max-start-epoch", "5",
            "--iterations", str(iterations), "--eval-it", "0", "--checkpoint-every", "1000", "--overwrite", "--quiet"]
    if nproc == 1:
        command = [sys.executable, "-m", "mct_plugin.harness.cli", *args]
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   "-m", "mct_plugin.harness.cli", *args]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // nproc))}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["seconds"] for r in rows if "seconds" in r][1:]  # skip the warm-up iteration
    per_iteration = sum(seconds) / len(seconds)
    return {"processes": nproc, "threads_per_process": env["OMP_NUM_THREADS"], "seconds_per_iteration": per_iteration,
            "iterations_per_s": 1 / per_iteration, "segments_per_s": nproc / per_iteration}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    out = output_dir(args.out)
    model, ipc, steps, iterations = ("ConvNetW16", 1, 2, 2) if args.quick else ("ConvNetW32", 1, 20, 12)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        buffers = write_random_walk_buffer(Path(tmp) / "buffers", model, epochs=8)
        for nproc in (1, 2):
            row = run(nproc, buffers, Path(tmp) / f"run{nproc}", model, ipc, steps, iterations)
            rows.append(row)
            print(f"{nproc} process(es): {row['seconds_per_iteration']:.3f} s/iteration, "
                  f"{row['segments_per_s']:.2f} segments/s", flush=True)
    write_json(out / "distributed.json", {"benchmark": "distributed", "quick": args.quick, **provenance(),
                                          "model": model, "ipc": ipc, "syn_steps": steps, "rows": rows})
    print(f"wrote {out / 'distributed.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
