"""Any timm model by name (``timm:<name>``), adapted to the dataset's channels, size and classes.

Adaptations, applied only where needed:

* ``in_chans`` and ``num_classes`` are always set (no pretrained weights are downloaded);
* inputs smaller than 32x32 (e.g. Fashion-MNIST's 28x28) are zero-padded to 32x32, the same
  trick the ConvNet family uses, so that stride-32 backbones (ConvNeXt, MobileNet, ResNet) keep
  at least a 1x1 feature map;
* models whose constructor takes ``img_size`` (ViT, DeiT, ...) get the padded size; if their
  patch is larger than a quarter of that size, ``patch_size`` is set to 4 (8x8 tokens at 32x32).
"""

from __future__ import annotations

import inspect

import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, UnknownNameError
from .._registry import ModelFactory

MIN_SIDE = 32


class PadToMinimum(nn.Module):
    """Zero-pad inputs symmetrically to at least ``size`` (H, W), then run ``model``."""

    def __init__(self, model: nn.Module, input_size: tuple[int, int], size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        dh, dw = size[0] - input_size[0], size[1] - input_size[1]
        self.padding = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)

    def forward(self, x):
        return self.model(F.pad(x, self.padding))


def _accepts(entrypoint, name: str) -> bool:
    try:
        params = inspect.signature(entrypoint).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def _build(timm_name: str, channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    import timm

    size = (max(image_size[0], MIN_SIDE), max(image_size[1], MIN_SIDE))
    kwargs = {"pretrained": False, "num_classes": num_classes, "in_chans": channels}
    probe = timm.create_model(timm_name, pretrained=False)
    cls = type(probe)
    if _accepts(cls.__init__, "img_size"):
        kwargs["img_size"] = size
        patch = getattr(getattr(probe, "patch_embed", None), "patch_size", None)
        if patch is not None and _accepts(cls.__init__, "patch_size"):
            patch = patch if isinstance(patch, (tuple, list)) else (patch, patch)
            if patch[0] > size[0] // 4 or patch[1] > size[1] // 4:
                kwargs["patch_size"] = 4
    del probe
    try:
        model = timm.create_model(timm_name, **kwargs)
    except Exception as exc:
        raise ConfigError(f"timm model {timm_name!r} cannot be built for {channels}x{image_size[0]}x{image_size[1]}: {exc}") from exc
    return PadToMinimum(model, image_size, size) if size != tuple(image_size) else model


def resolve(timm_name: str) -> ModelFactory:
    """The factory of timm model ``timm_name`` (``timm:<name>``)."""
    import timm

    if not timm.is_model(timm_name):
        close = timm.list_models(f"*{timm_name}*")[:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise UnknownNameError(f"unknown timm model {timm_name!r}{hint}")
    return lambda channels, num_classes, image_size: _build(timm_name, channels, num_classes, image_size)



