"""The harness's architectures by name, declared without importing torch (the families' modules
load when a model is first built): what the default plugin contributes (``dd_register_models``)."""

from __future__ import annotations

from .._registry import Lazy, ModelPrefix, ModelSpec

# ConvNet variants: name -> ConvNetConfig overrides (public MTT names)
CONVNET_VARIANTS: dict[str, dict] = {"ConvNet": {}}
CONVNET_VARIANTS.update({f"ConvNetD{d}": {"depth": d} for d in range(1, 9)})
CONVNET_VARIANTS.update({f"ConvNetW{w}": {"width": w} for w in (16, 32, 64, 128, 256, 512)})
CONVNET_VARIANTS.update({
    "ConvNetBN": {"norm": "batchnorm"}, "ConvNetIN": {"norm": "instancenorm"},
    "ConvNetLN": {"norm": "layernorm"}, "ConvNetGN": {"norm": "groupnorm"}, "ConvNetNN": {"norm": "none"},
    "ConvNetAP": {"pooling": "avgpooling"}, "ConvNetMP": {"pooling": "maxpooling"},
    "ConvNetNP": {"pooling": "none"},
    "ConvNetAS": {"activation": "sigmoid"}, "ConvNetAR": {"activation": "relu"},
    "ConvNetAL": {"activation": "leakyrelu"},
})
CIFAR_NETS = ("AlexNet", "VGG11", "VGG11BN", "ResNet18", "ResNet18BN")

BUILTIN_MODELS = [
    *(ModelSpec(name, Lazy("mct_plugin.harness.models.convnet:factory", name, argument=name))
      for name in CONVNET_VARIANTS),
    *(ModelSpec(name, Lazy("mct_plugin.harness.models.cifar_nets:factory", name, argument=name))
      for name in CIFAR_NETS),
    ModelPrefix("timm", Lazy("mct_plugin.harness.models.timm_models:resolve", "timm")),
]
