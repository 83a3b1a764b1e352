"""MTT's matcher: start and target are recorded checkpoints of an MTT replay buffer."""

from __future__ import annotations

from pathlib import Path

import torch

from mct_plugin.harness.api import PooledMatcher, load_replay_buffer, replay_buffer_files


class MTTMatcher(PooledMatcher):
    default_sampler = "discrete"

    def sources(self, directory: Path):
        load = lambda path: load_replay_buffer(path, self.model.shapes, self.model.names)  # noqa: E731
        return replay_buffer_files(directory), load, "buffer file(s)"

    def epochs_of(self, expert) -> int:
        return len(expert) - 1

    def point(self, trajectory, epoch: float) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in trajectory[int(epoch)]])
