"""Augmentation: DSA built from kornia (differentiable, replayable) and the expert augmentation."""

from __future__ import annotations

import pytest
import torch

from mct_plugin.harness.augment import CropScaleRotate, DifferentiableAugmentation
from mct_plugin.harness.errors import ConfigError

FAMILIES = ["color", "crop", "cutout", "flip", "scale", "rotate"]


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_reaches_the_input_and_parameters_replay(family):
    torch.manual_seed(0)
    aug = DifferentiableAugmentation((28, 28), strategy=family)
    x = torch.randn(8, 3, 28, 28, requires_grad=True)
    y = aug(x)
    params = aug.last_params
    assert params.family == family and y.shape == x.shape
    (grad,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)
    assert grad.abs().sum() > 0
    assert torch.equal(aug(x.detach(), params=params), y.detach())  # replay: identical output
    torch.manual_seed(123)
    assert torch.equal(aug(x.detach(), params=params), y.detach())  # independent of the RNG state


def test_siamese_replay_applies_the_same_transform_to_another_batch():
    torch.manual_seed(1)
    aug = DifferentiableAugmentation((16, 16), strategy="crop")
    a = torch.randn(4, 1, 16, 16)
    out_a = aug(a)
    b = a * 2.0 + 1.0  # an affine change of intensity commutes with a zero-padded crop up to the padding
    out_b = aug(b, params=aug.last_params)
    inside = out_a != 0
    assert torch.allclose(out_b[inside], out_a[inside] * 2.0 + 1.0)


def test_one_family_per_call_with_independent_per_sample_parameters():
    torch.manual_seed(2)
    aug = DifferentiableAugmentation((28, 28))
    seen = set()
    for _ in range(60):
        aug(torch.randn(4, 1, 28, 28))
        seen.add(aug.last_params.family)
    assert seen == set(FAMILIES)
    rotate = DifferentiableAugmentation((28, 28), strategy="rotate")
    rotate(torch.randn(16, 1, 28, 28))
    angles = rotate.last_params.params["degrees"]
    assert angles.unique().numel() == 16 and angles.abs().max() <= 15


def test_unknown_family_is_refused():
    with pytest.raises(ConfigError, match="unknown DSA family"):
        DifferentiableAugmentation((28, 28), strategy="color_blur")


def test_crop_scale_rotate_changes_each_image_and_keeps_shape():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    y = CropScaleRotate()(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    changed = (y - x).flatten(1).abs().amax(1) > 1e-4
    assert changed.float().mean() > 0.8  # a zero shift/scale/angle draw can leave an image unchanged
    # fill is the channel mean, not zero: corners of rotated images stay near the mean
    assert abs(float(y.mean() - x.mean())) < 0.1
