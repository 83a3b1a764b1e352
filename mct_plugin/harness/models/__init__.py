"""Models: the ConvNet family (MTT-compatible), CIFAR-style AlexNet/VGG-11/ResNet-18 and timm.

``create_model(name, channels, num_classes, image_size)`` builds any of them;
``list_models(pattern)`` and ``is_model(name)`` query the registry; ``timm:<name>`` builds a
timm model adapted to the data. :class:`FunctionalModel` runs a model from a flat vector.
"""

from . import cifar_nets, convnet, timm_models  # noqa: F401  (register the families)
from ._registry import create_model, get_model_factory, is_model, list_models, register_model
from .functional import FunctionalModel

__all__ = ["FunctionalModel", "create_model", "get_model_factory", "is_model", "list_models", "register_model"]
