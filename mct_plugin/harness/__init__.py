"""The generic distillation harness: data, models, augmentation, experts, the distillation loop,
evaluation, the plugin system and the ``dd-harness`` CLI. It knows no particular matcher;
matchers arrive as plugins through the ``dd_harness`` entry-point group.

Plugins import from :mod:`mct_plugin.harness.api` only (the one public surface).

Layers, bottom to top (an import-linter ``layers`` contract in ``setup.cfg`` holds them):
``errors``; ``io/`` (atomic writes, run directories, untrusted loading, metric names) and
``runtime/`` (torch.distributed, devices, allocator, signals); ``_registry`` (registries, model
specs, lazy declarations and package attributes) and ``options`` (typed options from one source);
``components`` (the kinds of component, their registries and the one way they are built),
``config`` (the commands' typed configs), ``recipes``; ``training``, ``events`` (lifecycle,
trackers) and ``command_options`` (a command's options and their one resolution); ``data/``,
``models/``, ``augment``; ``experts/`` (training, buffer format, pool, converters) and ``eval/``
(protocol, batched, saved sets, plots, cross-architecture table); ``distill/`` (matching
interfaces, gradient modes, synthetic set, checkpoints, resume decision, run factory, loop);
``plugins/`` (hook specs, manager, building the components, the default plugin); ``api`` (for
plugins); ``cli/`` (one module per command). A module that needs a registry receives it as an
argument.
"""

from .plugins.hookspecs import hookimpl

__all__ = ["hookimpl"]
