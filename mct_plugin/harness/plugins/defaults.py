"""The harness's own components, contributed through the same hooks as any plugin's
(pluggy's eggsample and datasette register their defaults this way). They are declared without
importing torch (:class:`~mct_plugin.harness._registry.Lazy`): their modules load when used."""

from __future__ import annotations

from .._registry import Lazy
from ..distill.mode_options import CheckpointedOptions
from .hookspecs import hookimpl

GRADIENT_MODES = "mct_plugin.harness.distill.gradient_modes"
AUGMENT = "mct_plugin.harness.augment"
STUDY = "mct_plugin.harness.study"


@hookimpl
def dd_register_models():
    from ..models.catalog import BUILTIN_MODELS

    return BUILTIN_MODELS


@hookimpl
def dd_register_datasets():
    from ..data.datasets import BUILTIN_DATASETS

    return BUILTIN_DATASETS


@hookimpl
def dd_register_expert_augmentations():
    return [Lazy(f"{AUGMENT}:crop_scale_rotate", "crop_scale_rotate",
                 "the public MTT experts': a random crop, scale or rotation per image"),
            Lazy(f"{AUGMENT}:dsa_for_experts", "dsa", "DSA's families, one chosen per call (as the student's)"),
            Lazy(f"{AUGMENT}:no_augmentation", "none", "the real images as they are")]


@hookimpl
def dd_register_executors():
    from ..study.executors import LocalOptions
    from ..study.submitit_executor import SubmititOptions

    return [Lazy(f"{STUDY}.executors:LocalProcesses", "local",
                 "processes on this machine, --workers at a time (each with the cores shared out as threads)",
                 options=LocalOptions),
            Lazy(f"{STUDY}.submitit_executor:SubmititJobs", "submitit",
                 "Slurm jobs through submitit.AutoExecutor (cluster: local runs them as local processes)",
                 options=SubmititOptions)]


@hookimpl
def dd_register_gradient_modes():
    return [
        Lazy(f"{GRADIENT_MODES}:Unrolled", "unrolled",
             "exact: backpropagation through all student steps (memory grows with syn_steps)"),
        Lazy(f"{GRADIENT_MODES}:Checkpointed", "checkpointed",
             "exact: reverse accumulation with per-step recomputation (memory nearly flat in syn_steps, ~1.3x the "
             "time of unrolled)", options=CheckpointedOptions),
        Lazy(f"{GRADIENT_MODES}:FirstOrder", "first-order",
             "approximate: the public MCT/TESLA gradient, memory independent of syn_steps (drops the Hessian terms)",
             aliases=("constant-memory",)),
        Lazy("mct_plugin.harness.distill.memory:Auto", "auto",
             "the fastest exact mode whose memory fits comfortably (unrolled, else checkpointed), chosen when the "
             "run is set up"),
    ]
