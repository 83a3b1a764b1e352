"""Where a distillation iteration spends its time: cProfile of a few unrolled MTT iterations.

ConvNet (width 128) on Fashion-MNIST, ipc=1, syn_steps=20, expert_epochs=2, experts from
random-walk trajectories with the model's shapes (the cost does not depend on their values).
Prints the per-iteration seconds and the top entries by cumulative time.

Usage: ``python -m benchmarks.profile_distill [--model M] [--ipc N] [--syn-steps S] [--iterations K]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

from ._common import components
from .speed import write_random_walk_buffer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ConvNet")
    parser.add_argument("--ipc", type=int, default=1)
    parser.add_argument("--syn-steps", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    from mct_plugin.harness.config import DistillConfig
    from mct_plugin.harness.distill import Distillation
    from mct_plugin.harness.runtime.allocator import tune_allocator

    tune_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        buffers = write_random_walk_buffer(Path(tmp) / "buffers", args.model, epochs=10)
        config = DistillConfig(matcher="mtt", model=args.model, ipc=args.ipc, syn_steps=args.syn_steps,
                               expert_epochs=2, max_start_epoch=5, iterations=args.iterations, eval_it=0,
                               buffer_path=str(buffers), out=str(Path(tmp) / "run"), checkpoint_every=1000)
        distillation = Distillation(config, components=components(), overwrite=True, show_progress=False)
        profiler = cProfile.Profile()
        profiler.enable()
        result = distillation.run()
        profiler.disable()
    print("seconds per iteration:", [round(r["seconds"], 3) for r in result.rows if "seconds" in r])
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
