"""MTT's sampler: integer start epochs drawn uniformly below ``max_start_epoch``."""

from __future__ import annotations

import torch

from mct_plugin.harness.api import ConfigError, Sampler, Segment


def _as_int(value: float, option: str) -> int:
    if float(value) != int(value):
        raise ConfigError(f"--{option} must be an integer for the discrete sampler (got {value}); "
                          f"use --sampler continuous for fractional epochs")
    return int(value)


class DiscreteSampler(Sampler):
    def bind(self, num_epochs: int) -> None:
        super().bind(num_epochs)
        c = self.config
        self.low = _as_int(c.min_start_epoch, "min-start-epoch")
        self.high = _as_int(c.max_start_epoch, "max-start-epoch")
        self.length = _as_int(c.expert_epochs, "expert-epochs")
        if self.high <= self.low:
            raise ConfigError(f"--max-start-epoch ({self.high}) must be larger than --min-start-epoch ({self.low})")
        last_target = self.high - 1 + self.length
        if last_target > num_epochs:
            raise ConfigError(
                f"--max-start-epoch {self.high} + --expert-epochs {self.length} reaches epoch {last_target}, "
                f"beyond the {num_epochs} epochs of the expert trajectories (at most "
                f"max_start_epoch + expert_epochs - 1 = {num_epochs})")

    def sample(self, iteration: int) -> Segment:
        start = int(torch.randint(self.low, self.high, (1,)))
        return Segment(float(start), float(start + self.length))
