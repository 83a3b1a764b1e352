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

    def register(self, name: str, obj: T, source: str = "mct_plugin") -> T:
        """Add ``obj`` under ``name``; a second component with the same name is refused."""
        if name in self._entries:
            previous = self._entries[name].source
            raise ConfigError(
                f"{self.kind} {name!r} is registered twice (by {previous} and by {source})"
            )
        self._entries[name] = Entry(name, obj, source)
        return obj

    def get(self, name: str) -> T:
        """The component called ``name``; an unknown name fails with the list of known ones."""
        try:
            return self._entries[name].obj
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def entry(self, name: str) -> Entry[T]:
        self.get(name)
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in natural order."""
        return sorted((n for n in self._entries if fnmatch.fnmatchcase(n, pattern)), key=natural_key)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)
