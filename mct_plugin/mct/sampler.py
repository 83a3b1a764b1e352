"""MCT's continuous sampler: real-valued start epochs, optionally with a growing upper bound."""

from __future__ import annotations

import logging

import torch

from mct_plugin.harness.api import ConfigError, Sampler, Segment

log = logging.getLogger(__name__)


class ContinuousSampler(Sampler):
    """Options: :class:`~.options.SamplerOptions` (declared with the sampler in the plugin module)."""

    def bind(self, num_epochs: int) -> None:
        super().bind(num_epochs)
        c = self.config
        self.low, self.length = float(c.min_start_epoch), float(c.expert_epochs)
        if self.low + self.length > num_epochs:
            raise ConfigError(f"--min-start-epoch {self.low:g} + --expert-epochs {self.length:g} is beyond the "
                              f"{num_epochs} epochs of the expert trajectories")
        # as in the public code, the upper bound never lets the target pass the last epoch
        self.high = min(float(c.max_start_epoch), num_epochs - self.length)
        if self.high < self.low:
            raise ConfigError(f"--max-start-epoch {c.max_start_epoch:g} is below --min-start-epoch {self.low:g}")
        if self.high < float(c.max_start_epoch):
            log.info("--max-start-epoch %g capped at %g: start epochs %g..%g, so that start + --expert-epochs %g "
                     "stays within the %d epochs of the expert trajectories", c.max_start_epoch, self.high, self.low,
                     self.high, self.length, num_epochs)

    def upper_bound(self, iteration: int) -> float:
        """``linear`` curriculum (public MCT code): ``min(hi, initial + max_start_epoch * it / ramp)``,
        ``ramp`` = ``--curriculum-iterations`` or iterations - 2500 (iterations if that is <= 0)."""
        o = self.options
        if o.start_curriculum == "none":
            return self.high
        total = self.config.iterations
        ramp = o.curriculum_iterations or (total - 2500 if total > 2500 else total)
        return max(self.low, min(self.high, o.curriculum_initial + float(self.config.max_start_epoch) * iteration / ramp))

    def sample(self, iteration: int) -> Segment:
        high = self.upper_bound(iteration)
        start = self.low + (high - self.low) * float(torch.rand(()))
        return Segment(start, min(start + self.length, float(self.num_epochs)))
