"""The set of registries a command works with (:class:`Components`): a spec type at the bottom
of the harness.

The plugin layer builds one from a plugin manager
(:func:`~mct_plugin.harness.plugins.components.build_components`); the CLI builds it once per
process and hands it to the command, which passes it to everything it builds. Library code never
looks components up on its own: a function that needs a registry takes it as an argument.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ._registry import ModelRegistry, Registry
from .options import fields_of


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

    def plugin_options_in_use(self, command: str, values: Mapping[str, Any],
                              in_use: Iterable[str]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
        """The plugin options of ``command`` (``values``, by name) that a component in use reads.

        An option dataclass names the components that read it in a ``used_by`` class attribute
        (``("matcher:mct", "sampler:continuous")``); a group without one is always in use.
        ``in_use`` lists the run's components the same way (``"matcher:mtt"``). Returns the values
        to keep, and ``{name: used_by}`` for the options left out that were set to something other
        than their default (the caller says that they are ignored).
        """
        in_use = set(in_use)
        kept, ignored = dict(values), {}
        for _, cls in self.option_groups(command):
            used_by = tuple(getattr(cls, "used_by", ()) or ())
            if not used_by or in_use & set(used_by):
                continue
            defaults = dataclasses.asdict(cls())
            for name in fields_of(cls):
                if name in kept and kept.pop(name) != defaults[name]:
                    ignored[name] = used_by
        return kept, ignored

    def option_groups(self, command: str) -> list[tuple[str, type]]:
        """``(source, option dataclass)`` that plugins contribute to ``command`` (cached)."""
        if command not in self._option_groups:
            self._option_groups[command] = list(self.collect_options(command))
        return self._option_groups[command]
