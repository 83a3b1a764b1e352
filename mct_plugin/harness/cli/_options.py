"""A command's options: the harness's config fields plus the plugins' option groups, merged
from defaults < recipe < ``--config`` file < command line, coerced and validated once."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..distill.resume import RECORD_KEYS  # config.json keys that are not options: ignored in --config files
from ..errors import ConfigError
from ..plugins.manager import NameClash, PluginProblem
from ..options import add_options, fields_of, flag, from_mapping, read_config_file, typed_on_command_line, values_for
from ..components import Components



@dataclass
class CommandOptions:
    """The options of one command: which come from the harness and which from which plugin."""

    command: str
    config_cls: type
    groups: list[tuple[str, type]] = field(default_factory=list)
    skip: tuple[str, ...] = ()  # fields of config_cls that the command does not offer

    def harness_names(self) -> set[str]:
        return set(fields_of(self.config_cls)) - {"plugin_options", *self.skip}

    def plugin_names(self) -> dict[str, type]:
        return {name: cls for _, cls in self.groups for name in fields_of(cls)}

    def known(self) -> set[str]:
        return self.harness_names() | set(self.plugin_names())


def add_command_options(parser: argparse.ArgumentParser, command: str, config_cls: type, components: Components,
                        *, skip: tuple[str, ...] = (), config_file: bool = True,
                        choices: Mapping[str, Any] | None = None) -> CommandOptions:
    """Add ``config_cls``'s fields (but ``skip``) and, where ``config_cls`` holds ``plugin_options``,
    the plugins' option groups for ``command`` to ``parser``; and ``--config FILE`` unless
    ``config_file`` is False."""
    spec = CommandOptions(command, config_cls, skip=tuple(skip))
    add_options(parser, config_cls, skip=skip, choices=choices, config_file=config_file)
    owners = {name: "the harness" for name in spec.harness_names()}
    plugin_groups = components.option_groups(command) if "plugin_options" in fields_of(config_cls) else []
    for source, cls in plugin_groups:
        if not dataclasses.is_dataclass(cls):
            components.pm.report(PluginProblem(source, f"dd_register_options('{command}')",
                                               f"{cls!r} is not an option dataclass"))
            continue
        taken = [name for name in fields_of(cls) if name in owners]
        if taken:  # the whole group goes: a plugin with half of its options would be a trap
            components.pm.report(NameClash(f"{command} option", flag(taken[0]), owners[taken[0]],
                                           f"plugin {source} ({cls.__name__})"))
            continue
        owners.update(dict.fromkeys(fields_of(cls), f"plugin {source}"))
        group = parser.add_argument_group(getattr(cls, "title", None) or f"{cls.__name__} ({source})")
        add_options(group, cls)
        spec.groups.append((source, cls))
    parser.set_defaults(command_options=spec)
    return spec


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """A config.json's nested ``plugin_options`` become top-level option values."""
    flat = {k: v for k, v in values.items() if k != "plugin_options" and k not in RECORD_KEYS}
    nested = values.get("plugin_options")
    if isinstance(nested, Mapping):
        flat.update(nested)
    return flat


def coerce_layer(spec: CommandOptions, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Option values from a file or recipe, checked against the known names and coerced."""
    values = _flatten(values)
    unknown = sorted(set(values) - spec.known())
    if unknown:
        raise ConfigError(f"{where}: unknown option {flag(unknown[0])} (not an option of 'dd-harness {spec.command}')")
    plugin = spec.plugin_names()
    out = values_for(spec.config_cls, {k: v for k, v in values.items() if k not in plugin}, where)
    for name, value in values.items():
        if name in plugin:
            out.update(values_for(plugin[name], {name: value}, where))
    return out


def build_config(spec: CommandOptions, args: argparse.Namespace, layers: list[tuple[str, Mapping[str, Any]]] = (),
                 **fixed: Any):
    """The command's config: ``layers`` (e.g. a recipe), then ``--config``, then the command line,
    then ``fixed`` values, all validated; plugin options land in ``plugin_options``."""
    merged: dict[str, Any] = {}
    for where, values in layers:
        merged.update(coerce_layer(spec, values, where))
    config_file = getattr(args, "config", None)
    if config_file:
        merged.update(coerce_layer(spec, read_config_file(config_file), str(config_file)))
    merged.update(typed_on_command_line(args, spec.known()))
    merged.update(fixed)
    plugin_options = {}
    for _, cls in spec.groups:
        group = from_mapping(cls, {k: v for k, v in merged.items() if k in fields_of(cls)})
        plugin_options.update(dataclasses.asdict(group))
    harness = {k: v for k, v in merged.items() if k in spec.harness_names()}
    if "plugin_options" in fields_of(spec.config_cls):
        harness["plugin_options"] = plugin_options
    config = from_mapping(spec.config_cls, harness)
    return config, plugin_options


def given_on_command_line(spec: CommandOptions, args: argparse.Namespace) -> dict[str, Any]:
    return typed_on_command_line(args, spec.known())
