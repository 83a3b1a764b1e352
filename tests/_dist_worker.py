"""Run by tests/test_distributed.py under torchrun (or plainly): a few distillation iterations,
then every rank prints a digest of its synthetic set, so the test can compare ranks."""

import hashlib
import json
import sys

import torch

from mct_plugin.harness import distributed
from mct_plugin.harness.distill import DistillConfig, Distillation

buffers, out, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
matcher, mode = sys.argv[4], sys.argv[5]
config = DistillConfig(model="ConvNetW16", matcher=matcher, gradient_mode=mode, buffer_path=buffers, out=out, ipc=1,
                       syn_steps=3, expert_epochs=1, max_start_epoch=2, iterations=iterations, eval_it=0, seed=5)
run = Distillation(config, overwrite=True, show_progress=False)
result = run.run()
digest = hashlib.sha256(result.synthetic.images.detach().numpy().tobytes()).hexdigest()
ctx = distributed.context()
print(json.dumps({"rank": ctx.rank, "world": ctx.world_size, "digest": digest, "lr": float(result.synthetic.lr.detach()),
                  "segments": [[r["start_epoch"], r["target_epoch"], r["expert"]] for r in result.rows if "loss" in r]}))
distributed.shutdown()
