"""MTT's matcher: start and target are recorded checkpoints of an MTT replay buffer."""

from __future__ import annotations

from pathlib import Path

import torch

from mct_plugin.harness.buffers import load_replay_buffer, replay_buffer_files, resolve_buffer_dir
from mct_plugin.harness.expert_pool import ExpertPool
from mct_plugin.harness.matching import Matcher


class MTTMatcher(Matcher):
    name = "mtt"
    description = "MTT: match the recorded SGD trajectory (replay_buffer_*.pt)"
    default_sampler = "discrete"

    def open(self, buffer_path: Path) -> None:
        c = self.config
        directory = resolve_buffer_dir(buffer_path, c.dataset, c.model, c.zca)
        files = replay_buffer_files(directory)[: c.max_files or None]
        load = lambda path: load_replay_buffer(path, self.model.shapes, self.model.names)
        lengths = {len(load(path)[0]) for path in files}  # validates every file before the run starts
        if len(lengths) > 1:
            from mct_plugin.harness.errors import BufferFormatError

            raise BufferFormatError(f"the buffers in {directory} hold trajectories of different lengths {sorted(lengths)}")
        self.pool = ExpertPool(files, load, max_experts=c.max_experts)
        self.num_epochs = lengths.pop() - 1
        self.report(f"mtt: {len(files)} buffer file(s) in {directory}, {self.num_epochs} epochs per expert")

    def next_trajectory(self):
        return self.pool.next()

    def point(self, trajectory, epoch: float) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in trajectory[int(epoch)]])

    def state_dict(self) -> dict:
        return {"pool": self.pool.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
