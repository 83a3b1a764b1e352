"""Infrastructure: the model registry and factory (``create_model``/``list_models``/``is_model``).

A model factory takes ``(channels, num_classes, image_size)`` and returns an ``nn.Module``.
Families register their names in their own module; ``timm:<name>`` is resolved by prefix.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch.nn as nn

from .._registry import Registry
from ..errors import UnknownNameError


class ModelFactory(Protocol):
    def __call__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module: ...


MODELS: Registry[ModelFactory] = Registry("model")
PREFIXES: dict[str, Callable[[str], ModelFactory]] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register ``factory(channels, num_classes, image_size)`` under ``name``."""
    return MODELS.decorator(name)


def register_prefix(prefix: str, resolve: Callable[[str], ModelFactory]) -> None:
    """Names ``prefix:rest`` are built by ``resolve(rest)`` (e.g. ``timm:resnet18``)."""
    PREFIXES[prefix] = resolve


def get_model_factory(name: str) -> ModelFactory:
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix in PREFIXES:
            return PREFIXES[prefix](rest)
        raise UnknownNameError(f"unknown model prefix {prefix!r} in {name!r}; known prefixes: "
                               + ", ".join(f"{p}:" for p in sorted(PREFIXES)))
    return MODELS.get(name)


def create_model(name: str, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    """A freshly initialised model ``name`` for images of ``channels`` x ``image_size``."""
    return get_model_factory(name)(channels, num_classes, tuple(image_size))


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching ``pattern`` (``timm:`` models are not enumerated)."""
    return MODELS.names(pattern)


def is_model(name: str) -> bool:
    try:
        get_model_factory(name)
    except UnknownNameError:
        return False
    return True
