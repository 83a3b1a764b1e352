"""Infrastructure: the model registry and factory (``create_model``/``list_models``/``is_model``).

A model factory takes ``(channels, num_classes, image_size)`` and returns an ``nn.Module``.
Families list their names in their own module (:class:`ModelSpec`); ``timm:<name>`` is resolved
by prefix (:class:`ModelPrefix`). Both reach the registry through the ``dd_register_models``
hook (the harness's own families through its default plugin), so a third-party plugin adds
architectures the same way. The module-level functions use the active components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch.nn as nn

from .._registry import Registry
from ..errors import ConfigError, UnknownNameError


class ModelFactory(Protocol):
    def __call__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module: ...


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
    """Named architectures and name prefixes."""

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
        if ":" in name:
            prefix, rest = name.split(":", 1)
            if prefix in self.prefixes:
                return self.prefixes.get(prefix)(rest)
            raise UnknownNameError(f"unknown model prefix {prefix!r} in {name!r}; known prefixes: "
                                   + ", ".join(f"{p}:" for p in self.prefixes.names()))
        return self.models.get(name)

    def create(self, name: str, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
        return self.factory(name)(channels, num_classes, tuple(image_size))

    def names(self, pattern: str = "*") -> list[str]:
        return self.models.names(pattern)

    def is_model(self, name: str) -> bool:
        try:
            self.factory(name)
        except UnknownNameError:
            return False
        return True


def _models() -> ModelRegistry:
    from ..plugins.components import current

    return current().models


def get_model_factory(name: str) -> ModelFactory:
    """The factory of model ``name`` (unknown names list the registered ones)."""
    return _models().factory(name)


def create_model(name: str, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """A freshly initialised model ``name`` for images of ``channels`` x ``image_size``."""
    return _models().create(name, channels, num_classes, image_size)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching ``pattern``, in natural order (``timm:`` models are not
    enumerated)."""
    return _models().names(pattern)


def is_model(name: str) -> bool:
    return _models().is_model(name)
