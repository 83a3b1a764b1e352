"""The plugin manager: the harness's default plugin plus the ``dd_harness`` entry points.

Environment variables (datasette and pytest have the same switches):

* ``DD_HARNESS_DISABLE_PLUGIN_AUTOLOAD=1`` - load no entry-point plugin (the harness's own
  components stay; the bundled ``mtt``/``mct`` plugins are entry points too, so they go as well);
* ``DD_HARNESS_PLUGINS=mtt,mct`` - load only these entry points;
* ``DD_HARNESS_TRACE_PLUGINS=1`` - print every hook call and its result to stderr.

A plugin that cannot be imported, does not validate against the hook specifications, or raises
in a contribution hook is skipped and recorded in :attr:`PluginManager.problems`; the CLI reports
each in one line and every other plugin keeps working.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl def dd_register_matchers(): ...``."""

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
DISABLE_AUTOLOAD_ENV = "DD_HARNESS_DISABLE_PLUGIN_AUTOLOAD"
SELECT_ENV = "DD_HARNESS_PLUGINS"
TRACE_ENV = "DD_HARNESS_TRACE_PLUGINS"
DEFAULT_PLUGIN_NAME = "dd_harness.defaults"


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that was skipped: its name, what failed, and the error in one line."""

    plugin: str
    stage: str
    message: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} was skipped: {self.stage} failed ({self.message})"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the record of skipped plugins."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.problems: list[PluginProblem] = []


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def entry_point_names(group: str = ENTRY_POINT_GROUP) -> list[str]:
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=group)})


def _unknown_hooks(pm: PluginManager, plugin: object) -> list[str]:
    return [caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.spec is None]


def new_plugin_manager(load_entrypoints: bool = True, environ: Mapping[str, str] | None = None) -> PluginManager:
    """A manager with the hook specs and the harness's default plugin; with ``load_entrypoints``
    also the installed ``dd_harness`` plugins (subject to the environment variables above)."""
    from . import defaults

    environ = os.environ if environ is None else environ
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(defaults, name=DEFAULT_PLUGIN_NAME)
    if load_entrypoints and not _env_flag(environ, DISABLE_AUTOLOAD_ENV):
        selected = {n.strip() for n in environ.get(SELECT_ENV, "").split(",") if n.strip()}
        for name in entry_point_names():
            if selected and name not in selected:
                continue
            try:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
            except Exception as exc:  # an import error, or hooks that do not match the specs
                pm.problems.append(PluginProblem(name, "loading", _one_line(exc)))
                continue
            plugin = pm.get_plugin(name)
            unknown = _unknown_hooks(pm, plugin) if plugin is not None else []
            if unknown:  # a misspelt hook would otherwise fail check_pending for every plugin
                pm.unregister(plugin)
                pm.problems.append(PluginProblem(name, "validation", f"unknown hook(s) {', '.join(unknown)}"))
    pm.check_pending()
    if _env_flag(environ, TRACE_ENV):
        pm.trace.root.setwriter(lambda text: sys.stderr.write(text))
        pm.enable_tracing()
    return pm


def plugin_source(pm: pluggy.PluginManager, plugin: object) -> str:
    """``"distribution version"`` for entry-point plugins, else the plugin's registered name."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return f"{dist.metadata['name']} {dist.version}"
    return pm.get_name(plugin) or getattr(plugin, "__name__", None) or repr(plugin)


def contributions(pm: PluginManager, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """``(source, item)`` for every item that each plugin's ``hook_name`` returns.

    The hook is called through the manager once per implementing plugin (a subset hook caller
    without the others), so tracing and the plugin's own hook wrappers apply and every item is
    attributed to its plugin. A plugin whose hook raises is skipped and recorded as a problem.
    """
    hook = getattr(pm.hook, hook_name)
    plugins = [impl.plugin for impl in hook.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
    for plugin in plugins:
        caller = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p is not plugin])
        try:
            results = caller(**kwargs)
        except Exception as exc:
            name = pm.get_name(plugin) or repr(plugin)
            problem = PluginProblem(name, hook_name, _one_line(exc))
            if problem not in pm.problems:
                pm.problems.append(problem)
            continue
        source = plugin_source(pm, plugin)
        for result in results:
            for item in result or []:
                yield source, item
