"""Infrastructure: a name -> component registry with clear errors (timm's ``_registry`` idea).

Datasets, models, gradient modes, expert augmentations and plugin components (matchers,
samplers, buffer converters, recipes, trackers) are all looked up through a :class:`Registry`;
nothing dispatches on names with if/elif chains. Listings sort naturally (``ConvNetW16`` before
``ConvNetW128``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Generic, Iterator, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``W16 < W32 < W128``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


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
        :meth:`canonical` but not listed); a second component with a taken name is refused."""
        for taken in (name, *aliases):
            if taken in self._entries or taken in self._aliases:
                previous = self._entries[self.canonical(taken)].source
                raise ConfigError(f"{self.kind} {taken!r} is registered twice (by {previous} and by {source})")
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
        """The component called ``name`` (or formerly called so); an unknown name fails with the
        list of known ones."""
        try:
            return self._entries[self.canonical(name)].obj
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def entry(self, name: str) -> Entry[T]:
        self.get(name)
        return self._entries[self.canonical(name)]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in natural order."""
        return sorted((n for n in self._entries if fnmatch.fnmatchcase(n, pattern)), key=natural_key)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)
