"""Run by tests/test_distributed.py under torchrun (or plainly): a few distillation iterations at
meta-batch 2, then every rank prints a digest of its synthetic set, so the test can compare ranks
(and a two-process run with a one-process run).

Arguments: BUFFERS OUT ITERATIONS MATCHER MODE [stop:K | resume] - ``stop:K`` checkpoints and
returns before iteration K, ``resume`` continues OUT from its checkpoint."""

import hashlib
import json
import sys

import torch

from mct_plugin.harness.runtime import distributed
from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import Distillation
from mct_plugin.harness.plugins.components import build_components

buffers, out, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
matcher, mode = sys.argv[4], sys.argv[5]
phase = sys.argv[6] if len(sys.argv) > 6 else ""
config = DistillConfig(model="ConvNetW16", matcher=matcher, gradient_mode=mode, buffer_path=buffers, out=out, ipc=1,
                       syn_steps=3, expert_epochs=1, max_start_epoch=2, iterations=iterations, eval_it=0, seed=5,
                       lr_lr=1e-7, meta_batch=2)
with distributed.process_group() as dist:
    run = Distillation(config, components=build_components(), overwrite=phase != "resume", resume=phase == "resume",
                       show_progress=False, dist=dist)
    result = run.run(stop_at=int(phase.split(":")[1]) if phase.startswith("stop:") else None)
digest = hashlib.sha256(result.synthetic.images.detach().numpy().tobytes()).hexdigest()
line = json.dumps({"rank": dist.rank, "world": dist.world_size, "digest": digest, "lr": float(result.synthetic.lr.detach()),
                   "segments": [r["segments"] for r in result.rows if "loss" in r]})
sys.stdout.write(line + "\n")  # one write: the two ranks share the pipe, and their lines must not interleave
sys.stdout.flush()
distributed.exit_process(0)  # skip gloo's teardown at interpreter exit, as the CLI does
