"""The public surface for plugin authors: import from here and nothing else in the harness.

Everything below is stable within a major version; every other module of
``mct_plugin.harness`` may move. A plugin is a module with :data:`hookimpl`-marked functions
(see :mod:`mct_plugin.harness.plugins.hookspecs` for every hook) listed under the ``dd_harness``
entry point of its distribution.

Components are explicit: a command receives the registries of its plugin manager
(:class:`Components`) and passes them to what it builds (``Distillation(config,
components=...)``, ``train_experts(config, components=...)``, matchers and converters get them
as ``self.components``). A script builds them once with :func:`build_components`.

Names are imported on first use (PEP 562), so a plugin module that imports ``hookimpl`` and its
option declarations from here does not import torch: listing plugins, ``--help`` and argument
errors stay quick.

The bundled plugins' matchers are re-exported for subclassing, as pytest's API re-exports classes
of its built-in plugins: :data:`MTTMatcher` (the recorded checkpoints of MTT replay buffers) and
:data:`MCTMatcher` (from the ``mct`` plugin). They are found by module name on first access (the
harness itself never imports a plugin); a subclass registers under its own ``name``.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._registry import Lazy, ModelPrefix, ModelRegistry, ModelSpec, Registry
    from .components import Components
    from .config import DistillConfig, EvalSettings, ExpertConfig
    from .data.datasets import DatasetSpec, RawSplits
    from .data.real import RealDataset, load_dataset
    from .distill.gradient_modes import GradientMode, MatchResult, StudentProblem, minibatch_schedule
    from .distill.loop import Distillation, DistillResult, distill
    from .distill.matching import (Matcher, MatchOutcome, PooledMatcher, Sampler, Segment, check_segment_length,
                                   normalised_distance)
    from .distill.synthetic import SyntheticSet
    from .errors import (BufferFormatError, ConfigError, DataNotFoundError, HarnessError, Interrupted, OutputError,
                         RunDirectoryError, UnknownNameError)
    from .eval.protocol import EvalResult, evaluate_set, random_real_subset
    from .experts.buffers import (check_buffer_folder, check_distinct_points, check_link_target, load_replay_buffer,
                                  replay_buffer_files,
                                  resolve_buffer_dir, save_replay_buffer, validate_trajectory)
    from .experts.conversion import BufferConverter, ConversionReport
    from .experts.metadata import read_training_record
    from .experts.pool import ExpertPool
    from .experts.train import ExpertRecord, train_experts
    from .io.atomic import atomic_path, atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text, \
        ensure_directory, remove_stale_temporaries
    from .io.paths import cache_dir
    from .io.rundir import RunDirectory
    from .io.untrusted import torch_load_untrusted
    from .events import Evaluation, RunInfo, Tracker
    from .models import FunctionalModel
    from .command_options import options_from_command_line
    from .options import add_options, from_mapping, option
    from .plugins.components import build_components
    from .plugins.hookspecs import hookimpl
    from .recipes import Recipe, read_recipe, recipes_in

_EXPORTS = {
    "Lazy": "._registry",
    "ModelPrefix": "._registry",
    "ModelRegistry": "._registry",
    "ModelSpec": "._registry",
    "Registry": "._registry",
    "Components": ".components",
    "DistillConfig": ".config",
    "EvalSettings": ".config",
    "ExpertConfig": ".config",
    "DatasetSpec": ".data.datasets",
    "RawSplits": ".data.datasets",
    "RealDataset": ".data.real",
    "load_dataset": ".data.real",
    "GradientMode": ".distill.gradient_modes",
    "MatchResult": ".distill.gradient_modes",
    "StudentProblem": ".distill.gradient_modes",
    "minibatch_schedule": ".distill.gradient_modes",
    "Distillation": ".distill.loop",
    "DistillResult": ".distill.loop",
    "distill": ".distill.loop",
    "Matcher": ".distill.matching",
    "MatchOutcome": ".distill.matching",
    "PooledMatcher": ".distill.matching",
    "Sampler": ".distill.matching",
    "Segment": ".distill.matching",
    "normalised_distance": ".distill.matching",
    "check_segment_length": ".distill.matching",
    "SyntheticSet": ".distill.synthetic",
    "BufferFormatError": ".errors",
    "ConfigError": ".errors",
    "DataNotFoundError": ".errors",
    "HarnessError": ".errors",
    "Interrupted": ".errors",
    "OutputError": ".errors",
    "RunDirectoryError": ".errors",
    "UnknownNameError": ".errors",
    "EvalResult": ".eval.protocol",
    "evaluate_set": ".eval.protocol",
    "random_real_subset": ".eval.protocol",
    "check_buffer_folder": ".experts.buffers",
    "check_distinct_points": ".experts.buffers",
    "check_link_target": ".experts.buffers",
    "load_replay_buffer": ".experts.buffers",
    "replay_buffer_files": ".experts.buffers",
    "resolve_buffer_dir": ".experts.buffers",
    "save_replay_buffer": ".experts.buffers",
    "validate_trajectory": ".experts.buffers",
    "BufferConverter": ".experts.conversion",
    "ConversionReport": ".experts.conversion",
    "read_training_record": ".experts.metadata",
    "ExpertPool": ".experts.pool",
    "ExpertRecord": ".experts.train",
    "train_experts": ".experts.train",
    "atomic_path": ".io.atomic",
    "atomic_torch_save": ".io.atomic",
    "atomic_write_bytes": ".io.atomic",
    "atomic_write_json": ".io.atomic",
    "atomic_write_text": ".io.atomic",
    "ensure_directory": ".io.atomic",
    "remove_stale_temporaries": ".io.atomic",
    "cache_dir": ".io.paths",
    "RunDirectory": ".io.rundir",
    "torch_load_untrusted": ".io.untrusted",
    "Evaluation": ".events",
    "RunInfo": ".events",
    "Tracker": ".events",
    "FunctionalModel": ".models",
    "add_options": ".options",
    "from_mapping": ".options",
    "option": ".options",
    "options_from_command_line": ".command_options",
    "build_components": ".plugins.components",
    "hookimpl": ".plugins.hookspecs",
    "Recipe": ".recipes",
    "read_recipe": ".recipes",
    "recipes_in": ".recipes",
}
BUNDLED_MATCHERS = {"MTTMatcher": "mct_plugin.mtt.matcher", "MCTMatcher": "mct_plugin.mct.matcher"}
_EXPORTS.update(BUNDLED_MATCHERS)


__getattr__ = lazy_exports(__package__, _EXPORTS, globals())  # PEP 562: a submodule loads on first use


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    # plugins
    "hookimpl", "Lazy", "Components", "build_components", "Registry", "option", "add_options", "options_from_command_line", "from_mapping", "Recipe", "read_recipe", "recipes_in",
    # trajectory matching
    "Matcher", "PooledMatcher", "Sampler", "Segment", "MatchOutcome", "normalised_distance", "check_segment_length",
    "GradientMode",
    "StudentProblem", "MatchResult", "minibatch_schedule", "SyntheticSet",
    # the bundled matchers, to subclass
    "MTTMatcher", "MCTMatcher",
    # experts and buffers
    "ExpertPool", "BufferConverter", "ConversionReport", "load_replay_buffer", "save_replay_buffer",
    "validate_trajectory", "check_distinct_points", "check_buffer_folder", "replay_buffer_files", "resolve_buffer_dir", "check_link_target",
    "torch_load_untrusted", "train_experts", "ExpertRecord", "read_training_record",
    # files
    "atomic_path", "atomic_torch_save", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
    "ensure_directory", "remove_stale_temporaries", "cache_dir", "RunDirectory",
    # data, models, runs, evaluation
    "DatasetSpec", "RawSplits", "RealDataset", "load_dataset", "ModelSpec", "ModelPrefix", "ModelRegistry",
    "FunctionalModel", "DistillConfig", "ExpertConfig", "EvalSettings", "Distillation", "DistillResult",
    "distill", "EvalResult", "evaluate_set", "random_real_subset",
    # lifecycle
    "RunInfo", "Evaluation", "Tracker",
    # errors
    "HarnessError", "ConfigError", "UnknownNameError", "DataNotFoundError", "BufferFormatError", "RunDirectoryError",
    "OutputError", "Interrupted",
]
