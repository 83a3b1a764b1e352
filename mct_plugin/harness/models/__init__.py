"""Models: the ConvNet family (MTT-compatible), CIFAR-style AlexNet/VGG-11/ResNet-18 and timm.

``create_model(name, channels, num_classes, image_size)`` builds any registered model;
``list_models(pattern)`` and ``is_model(name)`` query the registry; ``timm:<name>`` builds a
timm model adapted to the data. :class:`FunctionalModel` runs a model from a flat vector.
The families (:data:`BUILTIN_MODELS`) are contributed by the harness's default plugin.
"""

from . import cifar_nets, convnet, timm_models
from ._registry import (ModelPrefix, ModelRegistry, ModelSpec, create_model, get_model_factory, is_model,
                        list_models)
from .functional import FunctionalModel

BUILTIN_MODELS = [*convnet.MODELS, *cifar_nets.MODELS, timm_models.PREFIX]

__all__ = ["BUILTIN_MODELS", "FunctionalModel", "ModelPrefix", "ModelRegistry", "ModelSpec", "create_model",
           "get_model_factory", "is_model", "list_models"]
