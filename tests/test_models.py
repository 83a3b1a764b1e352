"""Models: the MTT-compatible ConvNet family, CIFAR-style nets, timm adapters, functional calls."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from mct_plugin.harness.errors import ConfigError, UnknownNameError
from mct_plugin.harness.models import FunctionalModel
from mct_plugin.harness.models.convnet import AvgPool2x2

from helpers import components, create_model


def expected_convnet(channels: int, side: int, width=128, depth=3, classes=10):
    """The public ConvNet order: per block conv.w, conv.b, norm.w, norm.b, then the classifier."""
    shapes, c = [], channels
    for _ in range(depth):
        shapes += [(width, c, 3, 3), (width,), (width,), (width,)]
        c = width
    feat = 32 // 2 ** depth if side in (28, 32) else side // 2 ** depth
    return shapes + [(classes, width * feat * feat), (classes,)]


@pytest.mark.parametrize("channels,side", [(1, 28), (3, 32)])
def test_convnet_parameter_order_and_shapes_match_mtt(channels, side):
    model = create_model("ConvNet", channels, 10, (side, side))
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == expected_convnet(channels, side)
    assert shapes[-2] == (10, 128 * 4 * 4)
    names = [n for n, _ in model.named_parameters()]
    # the public code's module names, so its state dicts load too
    assert names[:4] == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]
    assert names[-2:] == ["classifier.weight", "classifier.bias"]
    assert isinstance(model.features[1], nn.GroupNorm) and model.features[1].num_groups == 128
    assert model.features[0].padding == ((3, 3) if channels == 1 else (1, 1))


@pytest.mark.parametrize("name,depth,width", [("ConvNetD1", 1, 128), ("ConvNetD4", 4, 128), ("ConvNetW32", 3, 32)])
def test_convnet_variants(name, depth, width):
    shapes = [tuple(p.shape) for p in create_model(name, 1, 10, (28, 28)).parameters()]
    assert shapes == expected_convnet(1, 28, width, depth)


@pytest.mark.parametrize("name", components().models.names())
def test_every_registered_model_runs_or_refuses_clearly(name):
    torch.manual_seed(0)
    ran = 0
    for channels, side in [(1, 28), (3, 32), (3, 256)]:
        try:
            model = create_model(name, channels, 7, (side, side))
        except ConfigError as exc:  # deep ConvNets need larger images, as in the public code
            assert f"{side}x{side}" in str(exc)
            continue
        model.eval()
        out = model(torch.randn(2, channels, side, side))
        assert out.shape == (2, 7)
        assert torch.isfinite(out).all()
        ran += 1
        if side == 32:
            break
    assert ran >= 1


@pytest.mark.parametrize("name", ["timm:resnet18", "timm:vit_tiny_patch16_224", "timm:convnext_atto",
                                  "timm:mobilenetv3_small_050"])
def test_timm_models_are_adapted_to_the_data(name):
    for channels, side in [(1, 28), (3, 32)]:
        model = create_model(name, channels, 10, (side, side))
        assert model(torch.randn(2, channels, side, side)).shape == (2, 10)


def test_unknown_models_fail_with_the_known_names():
    with pytest.raises(UnknownNameError, match="unknown model 'ConvNett'; registered: AlexNet, ConvNet"):
        create_model("ConvNett", 1, 10, (28, 28))
    with pytest.raises(UnknownNameError, match="unknown timm model 'not_a_model'"):
        create_model("timm:not_a_model", 1, 10, (28, 28))
    models = components().models
    assert models.is_model("timm:resnet18") and models.is_model("VGG11") and not models.is_model("foo:bar")


def test_functional_model_matches_the_module_and_round_trips():
    torch.manual_seed(0)
    module = create_model("ConvNetW32", 1, 10, (28, 28))
    fm = FunctionalModel(module)
    x = torch.randn(3, 1, 28, 28)
    flat = fm.initial_flat()
    assert flat.numel() == fm.num_params == sum(p.numel() for p in module.parameters())
    assert torch.allclose(fm(flat, x), module(x), atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(fm.split(flat), module.parameters()))
    assert torch.equal(fm.flatten(fm.split(flat)), flat)
    # a different flat vector changes the output: the parameters really come from the vector
    assert not torch.allclose(fm(flat * 0.5, x), module(x))


@pytest.mark.parametrize("side", [8, 9, 32])
def test_fast_average_pool_equals_avgpool2d_and_is_twice_differentiable(side):
    x = torch.randn(2, 3, side, side, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(AvgPool2x2()(x), nn.AvgPool2d(2, 2)(x))
    x = x[:1, :2].detach().requires_grad_()  # the numerical checks cost the square of the input's size
    assert torch.autograd.gradcheck(lambda t: AvgPool2x2()(t).pow(2).sum(), (x,))
    assert torch.autograd.gradgradcheck(lambda t: AvgPool2x2()(t).pow(2).sum(), (x,))
