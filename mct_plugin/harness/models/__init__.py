"""Models: the ConvNet family (MTT-compatible), CIFAR-style AlexNet/VGG-11/ResNet-18 and timm.

Every family lists its names in its own module (:class:`~.._registry.ModelSpec`); ``timm:<name>``
builds a timm model adapted to the data (:class:`~.._registry.ModelPrefix`). The families
(:data:`BUILTIN_MODELS`) are contributed by the harness's default plugin; models are built
through the :class:`~.._registry.ModelRegistry` of a run's components
(``components.models.create(name, channels, num_classes, image_size)``).
:class:`FunctionalModel` runs a model from a flat vector.
"""

from . import cifar_nets, convnet, timm_models
from .functional import FunctionalModel

BUILTIN_MODELS = [*convnet.MODELS, *cifar_nets.MODELS, timm_models.PREFIX]

__all__ = ["BUILTIN_MODELS", "FunctionalModel"]
