"""Models: the ConvNet family (MTT-compatible), CIFAR-style AlexNet/VGG-11/ResNet-18 and timm.

Every architecture is declared by name in :mod:`.catalog` (:data:`~.catalog.BUILTIN_MODELS`,
contributed by the harness's default plugin) and its family module loads when a model is first
built: ``components.models.create(name, channels, num_classes, image_size)``. ``timm:<name>``
builds a timm model adapted to the data. :class:`~.functional.FunctionalModel` runs a model from a
flat vector. Nothing is imported here, so that listing the models does not import torch.
"""

from .._registry import lazy_exports

_EXPORTS = {"FunctionalModel": ".functional", "BUILTIN_MODELS": ".catalog"}
__all__ = ["BUILTIN_MODELS", "FunctionalModel"]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # PEP 562: a submodule loads on first use
