"""The generic distillation harness: data, models, augmentation, experts, the distillation loop,
evaluation, the plugin system and the ``dd-harness`` CLI. It knows no particular matcher;
matchers arrive as plugins through the ``dd_harness`` entry-point group.

Plugins implement the hooks of :mod:`.hookspecs` with :data:`hookimpl` and subclass
:class:`~.matching.Matcher`, :class:`~.matching.Sampler` or
:class:`~.conversion.BufferConverter`.
"""

from .plugins import hookimpl

__all__ = ["hookimpl"]
