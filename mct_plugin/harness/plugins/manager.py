"""The plugin manager: the harness's default plugin plus the ``dd_harness`` entry points.

Environment variables (datasette and pytest have the same switches):

* ``DD_HARNESS_DISABLE_PLUGIN_AUTOLOAD=1`` - load no entry-point plugin (the harness's own
  components stay; the bundled ``mtt``/``mct`` plugins are entry points too, so they go as well);
* ``DD_HARNESS_PLUGINS=mtt,mct`` - load only these entry points;
* ``DD_HARNESS_TRACE_PLUGINS=1`` - print every hook call and its result to stderr.

A plugin that cannot be imported, does not validate against the hook specifications, or raises
in a contribution hook is skipped and recorded in :attr:`PluginManager.problems`; the CLI reports
each in one line and every other plugin keeps working. A component (or option, or command) whose
name another plugin registered first is skipped alone (:class:`NameClash`): the plugins that ship
with the harness load first, then the others in entry-point name order, so a third-party plugin
never displaces a bundled component.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import pluggy

from . import defaults, hookspecs

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


@dataclass(frozen=True)
class NameClash:
    """A component that was skipped because an earlier plugin registered its name: its kind and
    name, who keeps the name (``"plugin SOURCE"``, or the harness itself) and the plugin whose
    component was skipped."""

    kind: str
    name: str
    first: str
    second: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} of {self.second} was skipped: {self.first} registered that name first"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the record of skipped plugins."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.problems: list[PluginProblem | NameClash] = []

    def report(self, problem: PluginProblem | NameClash) -> None:
        """Record ``problem`` once (components are collected more than once per process)."""
        if problem not in self.problems:
            self.problems.append(problem)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def entry_point_names(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """The entry-point names in load order: those of the plugins that ship with the harness (their
    module is in the harness's top-level package) first, then the others, each by name."""
    bundled_package = __name__.split(".")[0]
    points = {ep.name: ep.value.split(":")[0].split(".")[0] == bundled_package
              for ep in importlib.metadata.entry_points(group=group)}
    return sorted(points, key=lambda name: (not points[name], name))


def _unknown_hooks(pm: PluginManager, plugin: object) -> list[str]:
    return [caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.spec is None]


def new_plugin_manager(load_entrypoints: bool = True, environ: Mapping[str, str] | None = None) -> PluginManager:
    """A manager with the hook specs and the harness's default plugin; with ``load_entrypoints``
    also the installed ``dd_harness`` plugins (subject to the environment variables above)."""
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
                pm.problems.append(PluginProblem(name, "loading", one_line(exc)))
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
            pm.report(PluginProblem(pm.get_name(plugin) or repr(plugin), hook_name, one_line(exc)))
            continue
        source = plugin_source(pm, plugin)
        for result in results:
            for item in result or []:
                yield source, item
