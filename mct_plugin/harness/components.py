"""The kinds of component and the registries of one command (:class:`Components`), plus the one
way every component is built (:meth:`Components.build`): a spec layer at the bottom of the harness.

A kind of component is one row of :data:`COMPONENT_KINDS` (and its hook specification): the plugin
layer fills one registry per row from the row's hook
(:func:`~mct_plugin.harness.plugins.components.build_components`), listings and name checks
iterate over the rows, and the commands a row names offer the options of its components.

Every component class (matcher, sampler, buffer converter, gradient mode, tracker) is built the
same way, ``cls(options, context)``: ``options`` is an instance of the class's own ``Options``
dataclass (its option names are its own: two components may both have a ``smooth`` option) and
``context`` is a :class:`ComponentContext`. The CLI builds the components once per process and
hands them to the command; library code never looks components up on its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ._registry import Lazy, ModelRegistry, Registry
from .options import NoOptions, fields_of, from_mapping


@dataclass(frozen=True)
class ComponentKind:
    """One kind of component.

    :param kind: its name in messages and listings (``"matcher"``).
    :param attribute: the registry's attribute of :class:`Components` (``"matchers"``).
    :param hook: the contribution hook that plugins implement (``"dd_register_matchers"``).
    :param selector: the option that chooses one (``"--matcher"``), for option-group titles.
    :param commands: the commands whose command line offers the options of these components.
    """

    kind: str
    attribute: str
    hook: str
    selector: str
    commands: tuple[str, ...] = ()


COMPONENT_KINDS: tuple[ComponentKind, ...] = (
    ComponentKind("matcher", "matchers", "dd_register_matchers", "--matcher", ("distill",)),
    ComponentKind("sampler", "samplers", "dd_register_samplers", "--sampler", ("distill",)),
    ComponentKind("buffer converter", "converters", "dd_register_buffer_converters", "--to", ("convert",)),
    ComponentKind("gradient mode", "gradient_modes", "dd_register_gradient_modes", "--gradient-mode", ("distill",)),
    ComponentKind("recipe", "recipes", "dd_register_recipes", "--recipe"),
    ComponentKind("tracker", "trackers", "dd_register_trackers", "--track", ("distill", "experts", "convert")),
    ComponentKind("dataset", "datasets", "dd_register_datasets", "--dataset"),
    ComponentKind("expert augmentation", "expert_augmentations", "dd_register_expert_augmentations",
                  "--augmentation"),
    ComponentKind("executor", "executors", "dd_register_executors", "--executor", ("study run",)),
)
"""Every kind of named component; adding a kind is a hook specification and a row here."""


@dataclass(frozen=True)
class OptionGroup:
    """Option fields that a plugin adds to a command: a component's ``Options`` (``owner`` is
    ``"kind:name"``, and the values reach it only when the run uses it) or a group contributed to
    the command as a whole (``dd_register_options``; ``owner`` None)."""

    source: str
    options: type
    owner: str | None = None
    title: str = ""


@dataclass(frozen=True)
class ComponentContext:
    """What a component is built with besides its own options (one shape for every kind).

    :param config: the command's resolved, immutable config (e.g. ``DistillConfig``).
    :param components: the registries of the command.
    :param report: where progress lines go.
    :param model: ``distill``: the student network (a ``FunctionalModel``).
    :param run: the command's ``RunInfo`` (trackers).
    :param show_progress: whether long work shows a progress bar.
    :param on_file: ``convert``: called with each finished file's summary row.
    """

    config: Any
    components: "Components"
    report: Callable[[str], None] = print
    model: Any = None
    run: Any = None
    show_progress: bool = False
    on_file: Callable[[dict], None] | None = None


def component_options(component: Any) -> type:
    """The option dataclass of a component class, or of its :class:`Lazy` declaration (no import)."""
    options = component.options if isinstance(component, Lazy) else getattr(component, "Options", None)
    return options or NoOptions


@dataclass(frozen=True)
class Components:
    """Every named component the plugins contributed, by kind, plus the hook relay they came from.

    The registry of each kind is an attribute named by its row of :data:`COMPONENT_KINDS`
    (``components.matchers``, ``components.gradient_modes``, ...); models have their own registry
    (names and name prefixes).

    :param pm: the plugin manager (its ``hook`` attribute carries the lifecycle hooks).
    :param registries: the registry of each kind, by :attr:`ComponentKind.kind`.
    :param kinds: the rows the registries were built from (:data:`COMPONENT_KINDS`).
    :param collect_options: ``command -> [(source, option dataclass)]``, the option groups that
        plugins contribute to a command as a whole (called once per command, then cached).
    """

    pm: Any
    registries: Mapping[str, Registry]
    models: ModelRegistry
    kinds: tuple[ComponentKind, ...] = COMPONENT_KINDS
    collect_options: Callable[[str], list] = field(default=lambda command: [], repr=False, compare=False)
    _option_groups: dict[str, list] = field(default_factory=dict, repr=False, compare=False)

    def __getattr__(self, attribute: str) -> Registry:
        if not attribute.startswith("_") and attribute not in ("kinds", "registries"):
            for row in self.kinds:
                if row.attribute == attribute:
                    return self.registries[row.kind]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")

    def by_kind(self) -> dict[str, Registry]:
        """Every registry by kind, models (and model prefixes) last."""
        return {**self.registries, "model": self.models.models, "model prefix": self.models.prefixes}

    def check_names(self, **names: Iterable[str]) -> None:
        """Refuse unknown names before anything is loaded: ``check_names(models=[...],
        matchers=[...])`` (keywords are registry attributes); the first unknown name raises
        :class:`~mct_plugin.harness.errors.UnknownNameError` listing the registered names."""
        for attribute, values in names.items():
            find = self.models.factory if attribute == "models" else getattr(self, attribute).get
            for name in values:
                find(name)

    def build(self, kind: str, name: str, context: ComponentContext) -> Any:
        """The component ``name`` of ``kind``, built as every component is: ``cls(options,
        context)``, with its options taken from the values the command resolved
        (``context.config.plugin_options``) and validated against the class's ``Options``."""
        cls = self.registries[kind].get(name)
        values = getattr(context.config, "plugin_options", None) or {}
        options = from_mapping(component_options(cls), values, where=f"{kind} {name}")
        return cls(options, context)

    def option_groups(self, command: str) -> list[OptionGroup]:
        """The plugin option groups of ``command`` (cached): the ``Options`` of every registered
        component of the kinds that it offers, then the groups contributed to the command."""
        if command not in self._option_groups:
            groups = []
            for row in self.kinds:
                if command not in row.commands:
                    continue
                for entry in self.registries[row.kind].declared():
                    options = component_options(entry.obj)
                    if options is not NoOptions:
                        groups.append(OptionGroup(entry.source, options, f"{row.kind}:{entry.name}",
                                                  f"{row.kind} {entry.name} ({row.selector} {entry.name})"))
            groups += [OptionGroup(source, cls, title=getattr(cls, "title", "")) for source, cls in
                       self.collect_options(command)]
            self._option_groups[command] = groups
        return self._option_groups[command]

    def options_by_owner(self, command: str, given: Mapping[str, Any], in_use: Iterable[str]) -> dict[str, dict]:
        """The option values of every group of ``command`` in use (see :meth:`plugin_options_in_use`),
        under their owner: the component that reads them (``"matcher:mct"``), or ``"plugin SOURCE"``
        for a group contributed to the command as a whole."""
        in_use = set(in_use)
        by_owner: dict[str, dict] = {}
        for group in self.option_groups(command):
            if group.owner is None or group.owner in in_use:
                own = {name: given[name] for name in fields_of(group.options) if name in given}
                owner = group.owner or f"plugin {group.source}"
                by_owner[owner] = {**by_owner.get(owner, {}), **dataclasses.asdict(from_mapping(group.options, own))}
        return by_owner

    def plugin_options_in_use(self, command: str, given: Mapping[str, Any],
                              in_use: Iterable[str]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
        """The plugin option values of ``command`` that the components ``in_use`` read, and the
        ``given`` ones that none of them reads.

        ``in_use`` names the run's components as ``"kind:name"`` (``"matcher:mtt"``); a group that
        belongs to no component is always in use. Returns the values of every group in use (the
        ``given`` ones, else the group's defaults; where two groups declare a name, the first one's),
        which is what ``config.json`` records, and ``{name: owners}`` for the given options that no
        group in use reads and that differ from their default (the caller says that they are
        ignored).
        """
        groups = self.option_groups(command)
        values: dict[str, Any] = {}
        for own in self.options_by_owner(command, given, in_use).values():
            for name, value in own.items():
                values.setdefault(name, value)
        ignored: dict[str, tuple[str, ...]] = {}
        for group in groups:
            defaults = dataclasses.asdict(group.options())
            for name in fields_of(group.options):
                if name in given and name not in values and given[name] != defaults[name]:
                    ignored[name] = (*ignored.get(name, ()), group.owner)
        return values, ignored
