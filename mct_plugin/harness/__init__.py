"""The generic distillation harness: data, models, augmentation, experts, the distillation loop,
evaluation, the plugin system and the ``dd-harness`` CLI. It knows no particular matcher;
matchers arrive as plugins through the ``dd_harness`` entry-point group.

Plugins import from :mod:`mct_plugin.harness.api` only (the one public surface).

Layers, bottom to top (an import-linter ``layers`` contract in ``setup.cfg`` holds them):
``errors``; ``io/`` (atomic writes, run directories, untrusted loading) and ``runtime/``
(torch.distributed, devices, allocator, signals); ``_registry`` (registries, model specs, lazy
declarations), ``constants``, ``options`` (typed options from one source); ``components`` (the
registries a command works with), ``config``, ``events`` (lifecycle, trackers), ``recipes``;
``training``; ``data/``, ``models/``, ``augment``, ``plots``; ``experts/`` (training, buffer
format, pool, converters) and ``eval/`` (protocol, batched, saved sets, cross-architecture
table); ``distill/`` (matching interfaces, gradient modes, synthetic set, checkpoints, resume
decision, run factory, loop); ``plugins/`` (hook specs, manager, building the components, the
default plugin); ``api`` (for plugins); ``cli/`` (one module per command). A module that needs a
registry receives it as an argument.
"""

from .plugins.hookspecs import hookimpl

__all__ = ["hookimpl"]
