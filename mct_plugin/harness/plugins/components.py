"""The registries built from one plugin manager, and the set of them a command works with.

A command builds one :class:`Components` from its plugin manager and activates it
(:func:`activated`) for its duration; library functions that look a name up (``create_model``,
``get_dataset_spec``, ``get_gradient_mode``) use the active one, or - in a script that never
activated any - the components of the installed plugins (:func:`current`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from dataclasses import dataclass, field
from typing import Any, Iterator

from .._registry import Registry
from ..errors import ConfigError
from .manager import PluginManager, contributions, new_plugin_manager

COMPONENT_HOOKS = {
    "matcher": "dd_register_matchers",
    "sampler": "dd_register_samplers",
    "buffer converter": "dd_register_buffer_converters",
    "gradient mode": "dd_register_gradient_modes",
    "recipe": "dd_register_recipes",
    "tracker": "dd_register_trackers",
}


@dataclass
class Components:
    """Every named component the plugins contributed, by kind, plus the manager they came from."""

    pm: PluginManager
    matchers: Registry
    samplers: Registry
    converters: Registry
    gradient_modes: Registry
    recipes: Registry
    trackers: Registry
    datasets: Registry
    models: Any  # models._registry.ModelRegistry
    _option_groups: dict[str, list] = field(default_factory=dict, repr=False)

    def by_kind(self) -> dict[str, Registry]:
        return {"matcher": self.matchers, "sampler": self.samplers, "buffer converter": self.converters,
                "gradient mode": self.gradient_modes, "recipe": self.recipes, "tracker": self.trackers,
                "dataset": self.datasets, "model": self.models.models, "model prefix": self.models.prefixes}

    def option_groups(self, command: str) -> list[tuple[str, type]]:
        """``(source, option dataclass)`` that plugins contribute to ``command`` (cached)."""
        if command not in self._option_groups:
            self._option_groups[command] = list(contributions(self.pm, "dd_register_options", command=command))
        return self._option_groups[command]


def _named(pm: PluginManager, kind: str, hook_name: str, key: str = "name") -> Registry:
    registry: Registry = Registry(kind)
    for source, component in contributions(pm, hook_name):
        name = getattr(component, key, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{kind} {component!r} from {source} has no '{key}' attribute")
        registry.register(name, component, source, tuple(getattr(component, "aliases", ())))
    return registry


def build_components(pm: PluginManager | None = None) -> Components:
    """Collect every registry from ``pm`` (default: a new manager with the installed plugins);
    duplicate names are refused naming both plugins."""
    from ..models._registry import ModelRegistry

    pm = pm or new_plugin_manager()
    models = ModelRegistry()
    for source, item in contributions(pm, "dd_register_models"):
        models.add(item, source)
    named = {kind: _named(pm, kind, hook) for kind, hook in COMPONENT_HOOKS.items()}
    return Components(pm, named["matcher"], named["sampler"], named["buffer converter"], named["gradient mode"],
                      named["recipe"], named["tracker"], _named(pm, "dataset", "dd_register_datasets"), models)


_ACTIVE: contextvars.ContextVar[Components | None] = contextvars.ContextVar("dd_harness_components", default=None)


@functools.lru_cache(maxsize=1)
def installed_components() -> Components:
    """The components of every installed plugin (for library use outside a command)."""
    return build_components(new_plugin_manager())


def current() -> Components:
    """The active components (see :func:`activated`), else those of the installed plugins."""
    return _ACTIVE.get() or installed_components()


@contextlib.contextmanager
def activated(components: Components) -> Iterator[Components]:
    """Make ``components`` the ones name look-ups use inside the block."""
    token = _ACTIVE.set(components)
    try:
        yield components
    finally:
        _ACTIVE.reset(token)
