"""The plugin manager: loads ``dd_harness`` entry points and builds component registries.

Nothing here imports a plugin module by name; the built-in plugins arrive through their
entry points exactly like third-party plugins. Tests build a fresh manager with
``load_entrypoints=False`` and register small plugins inline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable

import pluggy

from . import hookspecs
from ._registry import Registry
from .errors import ConfigError, HarnessError

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl def dd_register_matchers(): ...``."""

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME

COMPONENT_HOOKS = {
    "matcher": "dd_register_matchers",
    "sampler": "dd_register_samplers",
    "buffer converter": "dd_register_buffer_converters",
}


def new_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the harness hook specs, optionally loading installed plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin must not hide the others' names
            raise HarnessError(f"could not load a {ENTRY_POINT_GROUP!r} plugin: {exc}") from exc
    pm.check_pending()
    return pm


@functools.lru_cache(maxsize=1)
def default_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager with every installed plugin loaded (cached)."""
    return new_plugin_manager(load_entrypoints=True)


def plugin_source(pm: pluggy.PluginManager, plugin: object) -> str:
    """``"distribution version"`` for entry-point plugins, else the plugin's module or name."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            name = getattr(dist, "project_name", None) or dist.metadata["name"]
            return f"{name} {dist.version}"
    return getattr(plugin, "__name__", None) or pm.get_name(plugin) or repr(plugin)


@dataclass(frozen=True)
class Components:
    """The registries built from one plugin manager."""

    matchers: Registry
    samplers: Registry
    converters: Registry

    def by_kind(self) -> dict[str, Registry]:
        return {"matcher": self.matchers, "sampler": self.samplers, "buffer converter": self.converters}


def _collect(pm: pluggy.PluginManager, kind: str) -> Registry:
    registry: Registry = Registry(kind)
    hook = getattr(pm.hook, COMPONENT_HOOKS[kind])
    for impl in hook.get_hookimpls():  # registration order
        contributed: Iterable[Any] = impl.function() or []
        source = plugin_source(pm, impl.plugin)
        for component in contributed:
            name = getattr(component, "name", None)
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{kind} {component!r} from {source} has no 'name' attribute")
            registry.register(name, component, source)
    return registry


def collect_components(pm: pluggy.PluginManager | None = None) -> Components:
    """Build the matcher, sampler and converter registries from ``pm`` (default: installed)."""
    pm = pm or default_plugin_manager()
    return Components(_collect(pm, "matcher"), _collect(pm, "sampler"), _collect(pm, "buffer converter"))


def register_plugin_commands(subparsers, pm: pluggy.PluginManager | None = None) -> dict[str, str]:
    """Let every plugin add sub-commands; return ``{command: plugin source}``."""
    pm = pm or default_plugin_manager()
    added: dict[str, str] = {}
    for impl in pm.hook.dd_register_commands.get_hookimpls():  # registration order
        before = set(subparsers.choices)
        try:
            impl.function(**{name: subparsers for name in impl.argnames})
        except Exception as exc:  # argparse refuses a name twice with a bare ArgumentError
            raise ConfigError(f"plugin {plugin_source(pm, impl.plugin)} could not add its commands: {exc}") from exc
        added.update({name: plugin_source(pm, impl.plugin) for name in set(subparsers.choices) - before})
    return added


def add_plugin_cli_options(command: str, parser, pm: pluggy.PluginManager | None = None) -> set[str]:
    """Let every plugin add options to ``parser``; return the ``dest`` names they added."""
    import argparse

    pm = pm or default_plugin_manager()
    before = {action.dest for action in parser._actions}
    offered = {"command": command, "parser": parser}
    for impl in pm.hook.dd_add_cli_options.get_hookimpls():  # registration order
        try:
            impl.function(**{name: offered[name] for name in impl.argnames})
        except argparse.ArgumentError as exc:
            raise ConfigError(
                f"plugin {plugin_source(pm, impl.plugin)} adds a conflicting option to "
                f"'{command}': {exc}"
            ) from exc
    return {action.dest for action in parser._actions} - before
