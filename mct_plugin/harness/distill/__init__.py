"""Distillation by trajectory matching: the plugin-facing matching interfaces, gradient modes, the
synthetic set, checkpoints, the run factory and the loop."""

from .loop import Distillation, DistillResult, distill

__all__ = ["DistillResult", "Distillation", "distill"]
