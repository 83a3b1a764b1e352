"""The harness's own components, contributed through the same hooks as any plugin's
(pluggy's eggsample and datasette register their defaults this way)."""

from __future__ import annotations

from .manager import hookimpl


@hookimpl
def dd_register_models():
    from ..models import BUILTIN_MODELS

    return BUILTIN_MODELS


@hookimpl
def dd_register_datasets():
    from ..data.datasets import BUILTIN_DATASETS

    return BUILTIN_DATASETS


@hookimpl
def dd_register_gradient_modes():
    from ..distill.gradient_modes import BUILTIN_GRADIENT_MODES

    return BUILTIN_GRADIENT_MODES
