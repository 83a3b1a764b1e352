"""Building the registries of one plugin manager (:func:`build_components`).

The CLI calls it once per process and hands the result to the command; a script that uses the
library calls it once (``components = build_components()``) and passes the result on.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from .._registry import ModelRegistry, Registry
from ..components import Components
from ..errors import ConfigError, DuplicateNameError
from .manager import NameClash, PluginManager, contributions, new_plugin_manager

COMPONENT_HOOKS = {
    "matcher": "dd_register_matchers",
    "sampler": "dd_register_samplers",
    "buffer converter": "dd_register_buffer_converters",
    "gradient mode": "dd_register_gradient_modes",
    "recipe": "dd_register_recipes",
    "tracker": "dd_register_trackers",
}


def _skipping_clashes(pm: PluginManager, register: Callable[[], object]) -> None:
    """``register()``, or, when its name is taken, one line naming both plugins (the later
    component is skipped; everything else keeps working)."""
    try:
        register()
    except DuplicateNameError as clash:
        pm.report(NameClash(clash.kind, clash.name, f"plugin {clash.first}", f"plugin {clash.second}"))


def _named(pm: PluginManager, kind: str, hook_name: str, key: str = "name") -> Registry:
    registry: Registry = Registry(kind)
    for source, component in contributions(pm, hook_name):
        name = getattr(component, key, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{kind} {component!r} from {source} has no '{key}' attribute")
        _skipping_clashes(pm, partial(registry.register, name, component, source,
                                      tuple(getattr(component, "aliases", ()))))
    return registry


def _option_groups(pm: PluginManager, command: str) -> list:
    return list(contributions(pm, "dd_register_options", command=command))


def build_components(pm: PluginManager | None = None) -> Components:
    """Collect every registry from ``pm`` (default: a new manager with the installed plugins); a
    name registered twice keeps the first plugin's component and skips the later one, with one
    line naming both in ``pm.problems``."""
    pm = pm or new_plugin_manager()
    models = ModelRegistry()
    for source, item in contributions(pm, "dd_register_models"):
        _skipping_clashes(pm, partial(models.add, item, source))
    named = {kind: _named(pm, kind, hook) for kind, hook in COMPONENT_HOOKS.items()}
    return Components(pm, named["matcher"], named["sampler"], named["buffer converter"], named["gradient mode"],
                      named["recipe"], named["tracker"], _named(pm, "dataset", "dd_register_datasets"), models,
                      collect_options=partial(_option_groups, pm))
