"""MTT's sampler: integer start epochs drawn uniformly below ``max_start_epoch``."""

from __future__ import annotations

import logging

import torch

from mct_plugin.harness.api import ConfigError, Sampler, Segment

log = logging.getLogger(__name__)


def _as_int(value: float, option: str) -> int:
    if float(value) != int(value):
        raise ConfigError(f"--{option} must be an integer for the discrete sampler (got {value}); "
                          f"use --sampler continuous for fractional epochs")
    return int(value)


class DiscreteSampler(Sampler):
    def bind(self, num_epochs: int) -> None:
        """Refuse bounds that leave no start epoch; cap ``--max-start-epoch`` (with a log line) where
        start + ``--expert-epochs`` would pass the last epoch, as the continuous sampler does."""
        super().bind(num_epochs)
        c = self.config
        self.low = _as_int(c.min_start_epoch, "min-start-epoch")
        requested = _as_int(c.max_start_epoch, "max-start-epoch")
        self.length = _as_int(c.expert_epochs, "expert-epochs")
        if requested <= self.low:
            raise ConfigError(f"--max-start-epoch ({requested}) must be larger than --min-start-epoch ({self.low})")
        if self.low + self.length > num_epochs:
            raise ConfigError(f"--min-start-epoch {self.low} + --expert-epochs {self.length} is beyond the "
                              f"{num_epochs} epochs of the expert trajectories")
        # start epochs are drawn below the bound (public MTT code): the last target is bound - 1 + length
        self.high = min(requested, num_epochs - self.length + 1)
        if self.high < requested:
            log.info("--max-start-epoch %d capped at %d: start epochs %d..%d, so that start + --expert-epochs %d "
                     "stays within the %d epochs of the expert trajectories", requested, self.high, self.low,
                     self.high - 1, self.length, num_epochs)

    def sample(self, iteration: int) -> Segment:
        start = int(torch.randint(self.low, self.high, (1,)))
        return Segment(float(start), float(start + self.length))
