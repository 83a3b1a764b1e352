"""Infrastructure: a name -> component registry with clear errors (timm's ``_registry`` idea).

Datasets, models, gradient modes, expert augmentations and plugin components (matchers,
samplers, buffer converters, recipes, trackers) are all looked up through a :class:`Registry`;
nothing dispatches on names with if/elif chains. Listings sort naturally (``ConvNetW16`` before
``ConvNetW128``). :class:`ModelRegistry` adds name prefixes (``timm:<name>``) for models.
A component may be declared :class:`Lazy` (where it lives, its name and description): listings
(``--help``, ``dd-harness plugins``/``models``) then need no import of its module, which loads the
first time the registry hands the component out. Packages use the same idea for their attributes
(:func:`lazy_exports`, PEP 562), so that importing a package does not import torch.

This module sits at the bottom of the harness with the errors: it imports nothing else (not
even torch), and code that needs a registry receives it as an argument.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Protocol, TypeVar

from .errors import ConfigError, DuplicateNameError, UnknownNameError

if TYPE_CHECKING:
    import torch.nn as nn

T = TypeVar("T")


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``W16 < W32 < W128``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Lazy:
    """A component declared by where it lives, imported when first used.

    The declaration is the one place that states the component's name, description, former names
    and options: listings, ``--help`` and argument errors read them from here without importing
    the component, and the class receives them when it is loaded (a class that states one of them
    itself must state the same value).

    :param target: ``"package.module:attribute"``.
    :param name: the component's registered name.
    :param description: the one line ``dd-harness plugins`` shows.
    :param argument: when given, the attribute is a factory and the component is
        ``attribute(argument)`` (e.g. one variant of a model family).
    :param aliases: former names the component is still found by (gradient modes).
    :param options: the component's option dataclass (its ``Options``), when it has options.
    """

    target: str
    name: str = ""
    description: str = ""
    argument: str | None = None
    aliases: tuple[str, ...] = ()
    options: type | None = None

    def load(self):
        module, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module), attribute)
        return obj(self.argument) if self.argument is not None else self.stamp(obj)

    def stamp(self, component):
        """Give a component class the name, description, former names and options declared here."""
        if not isinstance(component, type):
            return component
        declared = {"name": self.name, "description": self.description, "aliases": self.aliases,
                    "Options": self.options}
        for attribute, value in declared.items():
            if value in ("", (), None):
                continue
            own = component.__dict__.get(attribute, _UNSET)
            if own is _UNSET:
                setattr(component, attribute, value)
            elif own != value:
                raise ConfigError(f"{self.target} states {attribute} {own!r}, but its declaration says {value!r}")
        return component


_UNSET = object()


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its name, the object, and where it came from."""

    name: str
    obj: T
    source: str = "mct_plugin"


class Registry(Generic[T]):
    """Named components of one kind (``kind`` is used in error messages, e.g. "matcher")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}  # former name -> current name

    def register(self, name: str, obj: T, source: str = "mct_plugin", aliases: tuple[str, ...] = ()) -> T:
        """Add ``obj`` under ``name`` (and former names ``aliases``, accepted by :meth:`get` and
        :meth:`canonical` but not listed); a second component with a taken name is refused
        (:class:`DuplicateNameError`, naming both sources), and the registry stays as it was."""
        for taken in (name, *aliases):
            if taken in self._entries or taken in self._aliases:
                previous = self._entries[self.canonical(taken)].source
                raise DuplicateNameError(f"{self.kind} {taken!r} is registered twice (by {previous} and by {source})",
                                         self.kind, taken, previous, source)
        self._entries[name] = Entry(name, obj, source)
        self._aliases.update(dict.fromkeys(aliases, name))
        return obj

    def canonical(self, name: str) -> str:
        """The current name of ``name`` (itself unless it is a former name)."""
        return self._aliases.get(name, name)

    def aliases(self) -> dict[str, str]:
        """Former names and the names they now stand for."""
        return dict(self._aliases)

    def get(self, name: str) -> T:
        """The component called ``name`` (or formerly called so; a :class:`Lazy` one is imported now);
        an unknown name fails with the list of known ones."""
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        name = self.canonical(name)
        try:
            entry = self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {known}") from None
        if isinstance(entry.obj, Lazy):
            entry = self._entries[name] = Entry(name, entry.obj.load(), entry.source)
        return entry

    def declared(self) -> Iterator[Entry]:
        """Every entry as declared, in natural order, without importing a :class:`Lazy` one (its
        ``obj`` is then the declaration, with ``name`` and ``description``)."""
        return iter(self._entries[n] for n in self.names())

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in natural order."""
        return sorted((n for n in self._entries if fnmatch.fnmatchcase(n, pattern)), key=natural_key)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[Entry[T]]:
        """Every entry, loaded, in natural order."""
        return iter(self.entry(n) for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)


# -- models ---------------------------------------------------------------------------------
class ModelFactory(Protocol):
    def __call__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> "nn.Module": ...


@dataclass(frozen=True)
class ModelSpec:
    """An architecture called ``name``, built by ``factory(channels, num_classes, image_size)``."""

    name: str
    factory: ModelFactory


@dataclass(frozen=True)
class ModelPrefix:
    """Names ``prefix:rest`` are built by ``resolve(rest)`` (e.g. ``timm:resnet18``)."""

    prefix: str
    resolve: Callable[[str], ModelFactory]


class ModelRegistry:
    """Named architectures and name prefixes (``create``/``names``/``is_model``, as timm's
    ``create_model``/``list_models``/``is_model``)."""

    def __init__(self) -> None:
        self.models: Registry[ModelFactory] = Registry("model")
        self.prefixes: Registry[Callable[[str], ModelFactory]] = Registry("model prefix")

    def add(self, item: ModelSpec | ModelPrefix, source: str = "mct_plugin") -> None:
        if isinstance(item, ModelSpec):
            self.models.register(item.name, item.factory, source)
        elif isinstance(item, ModelPrefix):
            self.prefixes.register(item.prefix, item.resolve, source)
        else:
            raise ConfigError(f"{source} contributed {item!r} as a model; expected a ModelSpec or ModelPrefix")

    def factory(self, name: str) -> ModelFactory:
        """The factory of model ``name`` (unknown names list the registered ones)."""
        if ":" in name:
            prefix, rest = name.split(":", 1)
            if prefix in self.prefixes:
                return self.prefixes.get(prefix)(rest)
            raise UnknownNameError(f"unknown model prefix {prefix!r} in {name!r}; known prefixes: "
                                   + ", ".join(f"{p}:" for p in self.prefixes.names()))
        return self.models.get(name)

    def create(self, name: str, channels: int, num_classes: int, image_size: tuple[int, int]) -> "nn.Module":
        """A freshly initialised model ``name`` for images of ``channels`` x ``image_size``."""
        return self.factory(name)(channels, num_classes, tuple(image_size))

    def names(self, pattern: str = "*") -> list[str]:
        """Registered model names matching ``pattern``, in natural order (``timm:`` models are not
        enumerated)."""
        return self.models.names(pattern)

    def is_model(self, name: str) -> bool:
        try:
            self.factory(name)
        except UnknownNameError:
            return False
        return True


# -- package attributes loaded on first use ---------------------------------------------
def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a name to the (relative) module
    that defines it; the value is imported on first access and cached in ``namespace``."""

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
