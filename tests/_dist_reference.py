"""Single-process reference for tests/test_distributed.py: the gradients of rank 0's and rank 1's
first segments (each drawn from that rank's RNG stream), averaged, applied by one SGD step."""

import json
import sys
from pathlib import Path

import torch

from mct_plugin.harness.runtime import distributed
from mct_plugin.harness.config import DistillConfig
from mct_plugin.harness.distill import Distillation
from mct_plugin.harness.plugins.components import build_components

buffers, out = sys.argv[1], Path(sys.argv[2])
config = DistillConfig(model="ConvNetW16", matcher="mtt", buffer_path=buffers, out=str(out), ipc=1, syn_steps=3,
                       expert_epochs=1, max_start_epoch=2, iterations=1, eval_it=0, seed=5,
                       lr_lr=1e-7)  # one step must keep alpha > 0 (the loop floors it, this reference does not)
with Distillation(config, components=build_components(), overwrite=True, show_progress=False) as run:
    pool_state = run.matcher.pool.state_dict()
    grads, lr_grads, segments = [], [], []
    for rank in (0, 1):
        run.matcher.pool.load_state_dict(pool_state)
        torch.manual_seed(distributed.stream_seed(config.seed, rank))
        segment = run.sampler.sample(0)
        outcome = run.matcher.match(segment, run.synthetic, run.gradient_mode, run.augment)
        grads.append(outcome.result.images_grad)
        lr_grads.append(outcome.result.lr_grad.reshape(()))
        segments.append([segment.start, segment.target, outcome.expert])
    run.synthetic.images.grad = (grads[0] + grads[1]) / 2
    run.synthetic.lr.grad = (lr_grads[0] + lr_grads[1]) / 2
    run.optimizer_img.step()
    run.optimizer_lr.step()
torch.save(run.synthetic.images.detach().clone(), out / "averaged_images.pt")
print(json.dumps({"segments": segments, "lr": float(run.synthetic.lr.detach())}))
