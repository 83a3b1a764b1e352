"""The harness's own components, contributed through the same hooks as any plugin's
(pluggy's eggsample and datasette register their defaults this way). They are declared without
importing torch (:class:`~mct_plugin.harness._registry.Lazy`): their modules load when used."""

from __future__ import annotations

from .._registry import Lazy
from .hookspecs import hookimpl

GRADIENT_MODES = "mct_plugin.harness.distill.gradient_modes"


@hookimpl
def dd_register_models():
    from ..models.catalog import BUILTIN_MODELS

    return BUILTIN_MODELS


@hookimpl
def dd_register_datasets():
    from ..data.datasets import BUILTIN_DATASETS

    return BUILTIN_DATASETS


@hookimpl
def dd_register_gradient_modes():
    # name and description as the classes declare them (a test checks that they agree)
    return [Lazy(f"{GRADIENT_MODES}:{cls}", name, description, aliases=aliases)
            for cls, name, description, aliases in GRADIENT_MODE_DECLARATIONS]


GRADIENT_MODE_DECLARATIONS = [
    ("Unrolled", "unrolled", "exact: backpropagation through all student steps (memory grows with syn_steps)", ()),
    ("Checkpointed", "checkpointed", "exact: reverse accumulation with per-step recomputation (memory nearly flat "
                                     "in syn_steps, ~1.3x the time of unrolled)", ()),
    ("FirstOrder", "first-order", "approximate: the public MCT/TESLA gradient, memory independent of syn_steps (drops "
                                  "the Hessian terms)", ("constant-memory",)),
]
