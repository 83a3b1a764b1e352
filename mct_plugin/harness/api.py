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

from ._registry import lazy_exports

# module (relative to the harness) -> the names it exports; each name is imported on first use
_EXPORTED_BY_MODULE = {
    "._registry": ("Lazy", "ModelPrefix", "ModelRegistry", "ModelSpec", "Registry"),
    ".command_options": ("CommandOptions", "OptionLayer", "options_from_command_line", "resolve_options"),
    ".components": ("COMPONENT_KINDS", "ComponentContext", "ComponentKind", "Components"),
    ".config": ("DistillConfig", "EvalSettings", "ExpertConfig"),
    ".data.datasets": ("DatasetSpec", "RawSplits"),
    ".data.real": ("RealDataset", "load_dataset"),
    ".distill.draws": ("RandomStream",),
    ".distill.gradient_modes": ("GradientMode", "MatchResult", "StudentProblem", "StudentStep", "draw_steps",
                                "minibatch_schedule", "step_inputs", "student_gradient"),
    ".distill.loop": ("Distillation", "DistillResult", "distill"),
    ".distill.matching": ("Matcher", "MatchOutcome", "PooledMatcher", "Sampler", "Segment", "SegmentDraw",
                          "normalised_distance",
                          "check_segment_length"),
    ".distill.synthetic": ("SyntheticSet",),
    ".errors": ("BufferFormatError", "ConfigError", "DataNotFoundError", "HarnessError", "Interrupted", "OutputError",
                "RunDirectoryError", "UnknownNameError"),
    ".eval.protocol": ("EvalResult", "evaluate_set", "random_real_subset"),
    ".experts.buffers": ("check_buffer_folder", "check_distinct_points", "check_link_target", "load_replay_buffer",
                         "replay_buffer_files", "resolve_buffer_dir", "save_replay_buffer", "validate_trajectory"),
    ".experts.conversion": ("BufferConverter", "ConversionReport"),
    ".experts.metadata": ("read_training_record",),
    ".experts.pool": ("ExpertPool",),
    ".experts.train": ("ExpertRecord", "train_experts"),
    ".io.atomic": ("atomic_path", "atomic_torch_save", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
                   "ensure_directory", "remove_stale_temporaries"),
    ".io.paths": ("cache_dir",),
    ".io.rundir": ("RunDirectory",),
    ".io.untrusted": ("torch_load_untrusted",),
    ".events": ("Evaluation", "RunInfo", "Tracker"),
    ".models": ("FunctionalModel",),
    ".options": ("NoOptions", "add_options", "from_mapping", "option"),
    ".plugins.components": ("build_components",),
    ".plugins.hookspecs": ("hookimpl",),
    ".runtime.distributed": ("DistContext", "SINGLE_PROCESS", "process_group"),
    ".recipes": ("Recipe", "read_recipe", "recipes_in"),
    ".study.executors": ("Executor", "Launch"),
    ".study.report": ("write_report",),
    ".study.runner": ("RunOutcome", "Study"),
}
BUNDLED_MATCHERS = {"MTTMatcher": "mct_plugin.mtt.matcher", "MCTMatcher": "mct_plugin.mct.matcher"}
_EXPORTS = {name: module for module, names in _EXPORTED_BY_MODULE.items() for name in names} | BUNDLED_MATCHERS
__all__ = list(_EXPORTS)


__getattr__ = lazy_exports(__package__, _EXPORTS, globals())  # PEP 562: a submodule loads on first use


def __dir__() -> list[str]:
    return sorted(__all__)
