"""Building the registries of one plugin manager (:func:`build_components`).

The CLI calls it once per process and hands the result to the command; a script that uses the
library calls it once (``components = build_components()``) and passes the result on.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from .._registry import ModelRegistry, Registry
from ..components import COMPONENT_KINDS, ComponentKind, Components
from ..errors import ConfigError, DuplicateNameError
from .manager import NameClash, PluginManager, contributions, new_plugin_manager


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


def build_components(pm: PluginManager | None = None, kinds: tuple[ComponentKind, ...] = COMPONENT_KINDS) -> Components:
    """Collect every registry from ``pm`` (default: a new manager with the installed plugins); a
    name registered twice keeps the first plugin's component and skips the later one, with one
    line naming both in ``pm.problems``. ``kinds``: the rows of the registries to build (a kind added
    by a plugin system of its own: its row, whose hook the manager's specifications hold)."""
    pm = pm or new_plugin_manager()
    models = ModelRegistry()
    for source, item in contributions(pm, "dd_register_models"):
        _skipping_clashes(pm, partial(models.add, item, source))
    registries = {row.kind: _named(pm, row.kind, row.hook) for row in kinds}
    return Components(pm, registries, models, tuple(kinds), collect_options=partial(_option_groups, pm))
