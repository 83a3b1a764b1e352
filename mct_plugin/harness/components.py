"""The set of registries a command works with (:class:`Components`): a spec type at the bottom
of the harness.

The plugin layer builds one from a plugin manager
(:func:`~mct_plugin.harness.plugins.components.build_components`); the CLI builds it once per
process and hands it to the command, which passes it to everything it builds. Library code never
looks components up on its own: a function that needs a registry takes it as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ._registry import ModelRegistry, Registry


@dataclass(frozen=True)
class Components:
    """Every named component the plugins contributed, by kind, plus the hook relay they came from.

    :param pm: the plugin manager (its ``hook`` attribute carries the lifecycle hooks).
    :param collect_options: ``command -> [(source, option dataclass)]``, the option groups that
        plugins contribute to a command (called once per command, then cached).
    """

    pm: Any
    matchers: Registry
    samplers: Registry
    converters: Registry
    gradient_modes: Registry
    recipes: Registry
    trackers: Registry
    datasets: Registry
    models: ModelRegistry
    collect_options: Callable[[str], list] = field(default=lambda command: [], repr=False, compare=False)
    _option_groups: dict[str, list] = field(default_factory=dict, repr=False, compare=False)

    def by_kind(self) -> dict[str, Registry]:
        return {"matcher": self.matchers, "sampler": self.samplers, "buffer converter": self.converters,
                "gradient mode": self.gradient_modes, "recipe": self.recipes, "tracker": self.trackers,
                "dataset": self.datasets, "model": self.models.models, "model prefix": self.models.prefixes}

    def check_names(self, *, models: Iterable[str] = (), datasets: Iterable[str] = (), matchers: Iterable[str] = (),
                    samplers: Iterable[str] = (), gradient_modes: Iterable[str] = (),
                    trackers: Iterable[str] = ()) -> None:
        """Refuse unknown names before anything is loaded: the first one raises
        :class:`~mct_plugin.harness.errors.UnknownNameError` listing the registered names."""
        for name in models:
            self.models.factory(name)
        for registry, names in ((self.datasets, datasets), (self.matchers, matchers), (self.samplers, samplers),
                                (self.gradient_modes, gradient_modes), (self.trackers, trackers)):
            for name in names:
                registry.get(name)

    def option_groups(self, command: str) -> list[tuple[str, type]]:
        """``(source, option dataclass)`` that plugins contribute to ``command`` (cached)."""
        if command not in self._option_groups:
            self._option_groups[command] = list(self.collect_options(command))
        return self._option_groups[command]
