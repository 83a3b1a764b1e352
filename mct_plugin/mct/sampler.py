"""MCT's continuous sampler: real-valued start epochs, optionally with a growing upper bound."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mct_plugin.harness.errors import ConfigError
from mct_plugin.harness.matching import Sampler, Segment

CURRICULA = ("none", "linear")


@dataclass(frozen=True)
class CurriculumOptions:
    """``linear``: the upper bound grows as in the public MCT code,
    ``hi(it) = min(max_start_epoch, initial + max_start_epoch * it / iterations_to_full)``."""

    kind: str = "none"
    initial: float = 0.5
    iterations_to_full: int | None = None  # default: iterations - 2500 (public), or iterations


class ContinuousSampler(Sampler):
    name = "continuous"
    description = "MCT: start epoch uniform over reals [min_start_epoch, hi], optional linear growth of hi"

    def __init__(self, config) -> None:
        super().__init__(config)
        options = config.plugin_options
        initial = options.get("curriculum_initial")
        self.curriculum = CurriculumOptions(
            kind=options.get("start_curriculum") or "none",
            initial=0.5 if initial is None else float(initial),
            iterations_to_full=options.get("curriculum_iterations"),
        )
        if self.curriculum.kind not in CURRICULA:
            raise ConfigError(f"--start-curriculum must be one of {', '.join(CURRICULA)} (got {self.curriculum.kind!r})")

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
            from logging import getLogger

            getLogger(__name__).info("continuous sampler: start epochs capped at %.4g so that start + %g stays "
                                     "within %d epochs", self.high, self.length, num_epochs)

    def upper_bound(self, iteration: int) -> float:
        if self.curriculum.kind == "none":
            return self.high
        total = self.config.iterations
        ramp = self.curriculum.iterations_to_full or (total - 2500 if total > 2500 else total)
        return max(self.low, min(self.high, self.curriculum.initial + float(self.config.max_start_epoch) * iteration / ramp))

    def sample(self, iteration: int) -> Segment:
        high = self.upper_bound(iteration)
        start = self.low + (high - self.low) * float(torch.rand(()))
        return Segment(start, min(start + self.length, float(self.num_epochs)))
