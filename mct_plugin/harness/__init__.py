"""The generic distillation harness: data, models, augmentation, experts, the distillation loop,
evaluation, the plugin system and the ``dd-harness`` CLI. It knows no particular matcher;
matchers arrive as plugins through the ``dd_harness`` entry-point group.

Plugins import from :mod:`mct_plugin.harness.api` only (the one public surface).

Layout: ``api`` (for plugins), ``config``/``options`` (typed options from one source),
``plugins/`` (hook specs, manager, registries, lifecycle events), ``data/``, ``models/``,
``experts/`` (training, buffer format, pool, converters), ``distill/`` (matching interfaces,
gradient modes, synthetic set, checkpoints, run factory, loop), ``eval/`` (protocol, batched,
cross-architecture table), ``io/`` (atomic writes, run directories, untrusted loading),
``runtime/`` (torch.distributed, devices, allocator, signals), ``cli/`` (one module per command).
"""

from .plugins.manager import hookimpl

__all__ = ["hookimpl"]
