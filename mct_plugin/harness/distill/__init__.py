"""Distillation by trajectory matching: the plugin-facing matching interfaces, gradient modes, the
synthetic set, checkpoints, the run factory, the resume decision and the loop.

Names load on first use (PEP 562), so the CLI reads :mod:`.resume` without importing torch.
"""

import importlib

_EXPORTS = {"Distillation": ".loop", "DistillResult": ".loop", "distill": ".loop"}
__all__ = ["DistillResult", "Distillation", "distill"]


def __getattr__(name: str):  # PEP 562: the submodule loads on first use
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
