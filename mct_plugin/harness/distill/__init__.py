"""Distillation by trajectory matching: the plugin-facing matching interfaces, gradient modes, the
synthetic set, checkpoints, the run factory, the resume decision and the loop.

Names load on first use (PEP 562), so the CLI reads :mod:`.resume` without importing torch.
"""

from .._registry import lazy_exports

_EXPORTS = {"Distillation": ".loop", "DistillResult": ".loop", "distill": ".loop"}
__all__ = ["DistillResult", "Distillation", "distill"]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # PEP 562: a submodule loads on first use
