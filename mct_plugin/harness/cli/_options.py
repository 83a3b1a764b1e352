"""A command's command line: the harness's config fields plus the plugins' option groups
(:func:`add_command_options`), and the layers of option values a parsed command line gives
(:func:`command_layers`: recipe, ``--config`` file, what was typed), each read once, for
:func:`~mct_plugin.harness.command_options.resolve_options`."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Mapping

from ..command_options import CommandOptions, OptionLayer, resolve_options
from ..components import Components
from ..errors import ConfigError
from ..options import add_options, base_type, fields_of, flag, read_config_file, typed_on_command_line
from ..plugins.manager import NameClash, PluginProblem
from ..recipes import find_recipe


def add_command_options(parser: argparse.ArgumentParser, command: str, config_cls: type, components: Components,
                        *, skip: tuple[str, ...] = (), config_file: bool = True,
                        choices: Mapping[str, Any] | None = None,
                        absolute_paths: tuple[str, ...] = (), ignored: frozenset[str] = frozenset()) -> CommandOptions:
    """Add ``config_cls``'s fields (but ``skip``) and, where ``config_cls`` holds ``plugin_options``,
    the plugins' option groups for ``command`` to ``parser``; and ``--config FILE`` unless
    ``config_file`` is False (a file's ``ignored`` names are left out, see :class:`CommandOptions`).

    A group that takes a name of the harness's options is skipped (one line names both). Two
    groups may declare the same name with the same type: one flag sets it for both (each component
    keeps its own default); with different types the later group is skipped.
    """
    spec = CommandOptions(command, config_cls, skip=tuple(skip), absolute_paths=absolute_paths, ignored=ignored)
    add_options(parser, config_cls, skip=skip, choices=choices, config_file=config_file)
    owners = {name: ("the harness", None) for name in spec.harness_names()}
    plugin_groups = components.option_groups(command) if "plugin_options" in fields_of(config_cls) else []
    for group in plugin_groups:
        cls = group.options
        if not dataclasses.is_dataclass(cls):
            components.pm.report(PluginProblem(group.source, f"dd_register_options('{command}')",
                                               f"{cls!r} is not an option dataclass"))
            continue
        clash = next((name for name in fields_of(cls) if name in owners
                      and (owners[name][1] is None or owners[name][1] != base_type(cls, name))),
                     None)
        if clash:  # the whole group goes: a plugin with half of its options would be a trap
            components.pm.report(NameClash(f"{command} option", flag(clash), owners[clash][0],
                                           f"plugin {group.source} ({cls.__name__})"))
            continue
        shared = [name for name in fields_of(cls) if name in owners]
        owners.update({name: (f"plugin {group.source}", base_type(cls, name)) for name in fields_of(cls)
                       if name not in owners})
        section = parser.add_argument_group(group.title or f"{cls.__name__} ({group.source})")
        add_options(section, cls, skip=shared)
        spec.groups.append(group)
    parser.set_defaults(command_options=spec)
    return spec


def command_layers(args: argparse.Namespace, components: Components) -> list[OptionLayer]:
    """The option values a parsed command line gives, lowest first: the recipe (``--recipe``, or
    the ``recipe`` a ``--config`` file names), the ``--config`` file, what was typed."""
    spec: CommandOptions = args.command_options
    from_file = read_config_file(args.config) if getattr(args, "config", None) else None
    layers = []
    recipe_name = getattr(args, "recipe", None) or (from_file or {}).get("recipe")
    if recipe_name:
        recipe = find_recipe(components.recipes, recipe_name)
        if recipe.command != spec.command:
            raise ConfigError(f"recipe {recipe_name} is for 'dd-harness {recipe.command}', not for {spec.command}")
        layers.append(OptionLayer(recipe.where, {**recipe.options, "recipe": recipe.name,
                                                 "recipe_version": recipe.version}))
        if from_file is not None and "recipe" in from_file:  # a recipe file named by its path: record its name
            from_file = {**from_file, "recipe": recipe.name}
    if from_file is not None:
        layers.append(OptionLayer(str(args.config), from_file))
    typed = spec.known() - {name for name, f in fields_of(spec.config_cls).items() if f.metadata.get("cli") is False}
    layers.append(OptionLayer("the command line", typed_on_command_line(args, typed)))
    return layers


def resolved(args: argparse.Namespace, components: Components, recorded: OptionLayer | None = None):
    """The command's config from its parsed command line (see :func:`command_layers`), on top of
    the defaults or of a resumed run's ``recorded`` options."""
    return resolve_options(args.command_options, command_layers(args, components), recorded=recorded)
