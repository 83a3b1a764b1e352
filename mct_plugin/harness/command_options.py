"""A command's options and their one resolution (:func:`resolve_options`).

:class:`CommandOptions` says which options a command has: the fields of its typed config (less
those it does not offer) and the option groups of plugins and components
(:class:`~mct_plugin.harness.components.OptionGroup`). :func:`resolve_options` merges the sources
of their values, lowest first: the defaults, or the options a resumed run recorded in its
``config.json``; then the layers (a recipe, a ``--config`` file, the command line), each read
once by the caller. The result is validated once and frozen. The plugin options in it are the
values that were given (``plugin_options``); each component fills in its own defaults when it is
built (:meth:`~mct_plugin.harness.components.Components.build`), so two components may declare
the same option name with their own type and default.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .components import OptionGroup
from .errors import ConfigError
from .options import fields_of, flag, from_mapping, read_config_file, typed_on_command_line, values_for

RECORD_KEYS = frozenset({"world_size", "buffer_files", "resumed", "component_options"})
"""``config.json`` keys that are not options (what a run measured and how it was resumed)."""


@dataclass(frozen=True)
class OptionLayer:
    """Option values from one source, by option name; ``where`` names the source in errors (a
    recipe, a file, ``"the command line"``). A ``config.json``'s nested ``plugin_options`` and
    record keys are accepted as they are written."""

    where: str
    values: Mapping[str, Any]


@dataclass
class CommandOptions:
    """The options of one command: the harness's config fields (less ``skip``) and the plugins'
    option groups; ``absolute_paths`` names the path options resolved to absolute paths (so that a
    recorded config still points at the data from another folder); ``ignored`` the names a file of
    option values may hold that this command leaves out (eval: the options of a run's
    ``config.json`` that only distill has)."""

    command: str
    config_cls: type
    groups: list[OptionGroup] = field(default_factory=list)
    skip: tuple[str, ...] = ()
    absolute_paths: tuple[str, ...] = ()
    ignored: frozenset[str] = frozenset()

    def harness_names(self) -> set[str]:
        return set(fields_of(self.config_cls)) - {"plugin_options", *self.skip}

    def plugin_names(self) -> dict[str, list[type]]:
        """Every plugin option name and the option classes that declare it (one or several)."""
        names: dict[str, list[type]] = {}
        for group in self.groups:
            for name in fields_of(group.options):
                names.setdefault(name, []).append(group.options)
        return names

    def known(self) -> set[str]:
        return self.harness_names() | set(self.plugin_names())

    def values_of(self, layer: OptionLayer, *, strict: bool = True) -> dict[str, Any]:
        """The layer's values coerced to their types; an unknown name is refused in one line naming
        the source (``strict``) or left out (a recorded run, whose plugins may have changed)."""
        left_out = RECORD_KEYS | self.ignored | {"plugin_options"}
        values = {k: v for k, v in layer.values.items() if k not in left_out}
        nested = layer.values.get("plugin_options") if "plugin_options" not in self.ignored else None
        if isinstance(nested, Mapping):
            values.update(nested)
        unknown = sorted(set(values) - self.known())
        if unknown and strict:
            raise ConfigError(f"{layer.where}: unknown option {flag(unknown[0])} (not an option of "
                              f"'dd-harness {self.command}')")
        plugin = self.plugin_names()
        out = values_for(self.config_cls, {k: v for k, v in values.items() if k not in plugin}, layer.where)
        for name, value in values.items():
            if name in plugin:
                out.update(values_for(plugin[name][0], {name: value}, layer.where))
        return out


def resolve_options(spec: CommandOptions, layers: Sequence[OptionLayer], *, recorded: OptionLayer | None = None):
    """The command's config: the defaults (or the ``recorded`` options of a resumed run), then
    ``layers`` in order, validated once; plugin options that were given land in ``plugin_options``
    (each checked against every class that declares it).

    :raises ConfigError: an unknown option in a layer, or an invalid value (the message names its source).
    """
    merged = spec.values_of(recorded, strict=False) if recorded is not None else {}
    for layer in layers:
        merged.update(spec.values_of(layer))
    for name in spec.absolute_paths:
        if isinstance(merged.get(name), str):
            merged[name] = os.path.abspath(os.path.expanduser(merged[name]))
    plugin = spec.plugin_names()
    given = {name: value for name, value in merged.items() if name in plugin}
    for group in spec.groups:  # every declaring class validates the values given for it
        from_mapping(group.options, {k: v for k, v in given.items() if k in fields_of(group.options)})
    harness = {k: v for k, v in merged.items() if k in spec.harness_names()}
    if "plugin_options" in fields_of(spec.config_cls):
        harness["plugin_options"] = given
    return from_mapping(spec.config_cls, harness)


def options_from_command_line(cls: type, namespace: argparse.Namespace, command: str):
    """The options of ``cls`` that a command parsed with :func:`~.options.add_options`
    (``config_file=True``): :func:`resolve_options` over the defaults, the ``--config`` file and
    what was typed (a plugin command's options, e.g. ``dd-harness demo``).

    :raises ConfigError: the file cannot be read, or names an option that ``cls`` does not offer
        (the message names the file and ``dd-harness COMMAND``).
    """
    not_offered = tuple(name for name, f in fields_of(cls).items() if f.metadata.get("cli") is False)
    spec = CommandOptions(command, cls, skip=not_offered)
    path = getattr(namespace, "config", None)
    layers = [OptionLayer(str(path), read_config_file(path))] if path else []
    layers.append(OptionLayer("the command line", typed_on_command_line(namespace, spec.known())))
    return resolve_options(spec, layers)
