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
    params = aug.sample(x.shape)
    y = aug.apply(x, params)
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
    params = aug.sample(a.shape)
    out_a = aug.apply(a, params)
    b = a * 2.0 + 1.0  # an affine change of intensity commutes with a zero-padded crop up to the padding
    out_b = aug(b, params=params)
    inside = out_a != 0
    assert torch.allclose(out_b[inside], out_a[inside] * 2.0 + 1.0)


def test_one_family_per_call_with_independent_per_sample_parameters():
    torch.manual_seed(2)
    aug = DifferentiableAugmentation((28, 28))
    seen = set()
    for _ in range(60):
        seen.add(aug.sample((4, 1, 28, 28)).family)
    assert seen == set(FAMILIES)
    rotate = DifferentiableAugmentation((28, 28), strategy="rotate")
    angles = rotate.sample((16, 1, 28, 28)).params["degrees"]
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


# -- the sampled distributions are DSA's (ParamDiffAug: scale 1.2, cutout 0.5), checked through
#    what the transforms do to images, against closed-form values of the DSA formulas -------------
def _spot_image(size: int, row: int, col: int, count: int) -> torch.Tensor:
    x = torch.zeros(count, 1, size, size)
    x[:, :, row, col] = 1.0
    return x


def test_scale_samples_the_input_at_s_times_the_output_coordinates_with_s_uniform():
    # DSA: out(p) = in(s * p) in normalised coordinates (align_corners), s ~ U[1/1.2, 1.2] per axis.
    # A smooth bump centred at normalised offset q therefore appears centred at q / s: measuring
    # where it lands gives s back. The image shrinks for s > 1 (kornia's RandomAffine enlarges it).
    torch.manual_seed(0)
    size, count, q = 65, 4000, 0.75
    coords = (torch.arange(size, dtype=torch.float32) - 32) / 32  # normalised, align_corners=True
    bump = torch.exp(-((coords - q) ** 2).view(1, size) / (2 * 0.06**2) - (coords**2).view(size, 1) / (2 * 0.06**2))
    aug = DifferentiableAugmentation((size, size), strategy="scale")
    out = aug(bump.expand(count, 1, size, size).contiguous())[:, 0]
    centre = (out.sum(1) * coords).sum(1) / out.sum((1, 2))
    s = q / centre
    low, high = 1 / 1.2, 1.2
    assert float(s.min()) > low - 0.01 and float(s.max()) < high + 0.01
    assert float(s.mean()) == pytest.approx((low + high) / 2, abs=0.006)  # U[a, b]: mean (a + b) / 2 = 1.0167
    assert float(s.var()) == pytest.approx((high - low) ** 2 / 12, rel=0.1)  # (b - a)^2 / 12
    quartiles = torch.quantile(s, torch.tensor([0.25, 0.5, 0.75]))
    expected = torch.tensor([low + f * (high - low) for f in (0.25, 0.5, 0.75)])
    assert torch.allclose(quartiles, expected, atol=0.01)  # uniform in s (1/s would be skewed)
    assert float((s > 1).float().mean()) == pytest.approx((high - 1) / (high - low), abs=0.03)  # shrinks


def test_cutout_centres_are_uniform_over_the_image_and_patches_are_clipped_by_the_border():
    # DSA: a 14x14 patch (0.5 * 28) whose centre is uniform over 0..28 in each axis (29 values for an
    # even patch size); the patch covers centre-7 .. centre+6, clipped to the image.
    torch.manual_seed(1)
    size, patch, count = 28, 14, 6000
    aug = DifferentiableAugmentation((size, size), strategy="cutout")
    out = aug(torch.ones(count, 1, size, size))
    zero = out[:, 0] == 0
    rows_hit, cols_hit = zero.any(2).float(), zero.any(1).float()
    heights, widths = rows_hit.sum(1), cols_hit.sum(1)

    def covered(centre: int) -> int:
        return min(centre - patch // 2 + patch - 1, size - 1) - max(centre - patch // 2, 0) + 1

    lengths = torch.tensor([covered(c) for c in range(size + 1)], dtype=torch.float32)
    unclipped = float((lengths == patch).float().mean())  # 15 of 29 centres leave the patch whole
    assert unclipped == pytest.approx(15 / 29)
    whole = ((heights == patch) & (widths == patch)).float().mean()
    assert float(whole) == pytest.approx(unclipped**2, abs=0.025)  # kornia's RandomErasing: always 1
    assert float(heights.mean()) == pytest.approx(float(lengths.mean()), abs=0.15)
    assert float(zero.float().sum((1, 2)).mean()) == pytest.approx(float(lengths.mean()) ** 2, rel=0.03)
    # every row is hit with the frequency the uniform centre implies (edges less often than the middle)
    expected_rows = torch.tensor([sum(1 for c in range(size + 1) if c - 7 <= r <= c + 6) / (size + 1)
                                  for r in range(size)])
    assert torch.allclose(rows_hit.mean(0), expected_rows, atol=0.03)


def test_crop_shifts_are_uniform_integers_within_the_padding():
    # DSA crop: shifts uniform over -4..4 (int(28 * 0.125 + 0.5)) per axis, zero fill
    torch.manual_seed(2)
    aug = DifferentiableAugmentation((28, 28), strategy="crop")
    out = aug(_spot_image(28, 14, 14, 4000))
    position = out[:, 0].flatten(1).argmax(1)
    rows, cols = position // 28 - 14, position % 28 - 14
    for shift in (rows, cols):
        counts = torch.bincount(shift + 4, minlength=9).float() / len(shift)
        assert shift.abs().max() == 4 and torch.allclose(counts, torch.full((9,), 1 / 9), atol=0.02)
