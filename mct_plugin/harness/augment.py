"""Data augmentation built from kornia.

* :class:`DifferentiableAugmentation` - DSA (differentiable Siamese augmentation) as used by
  trajectory matching for the student's synthetic batches: per call one randomly chosen family among
  color / crop / cutout / flip / scale / rotate ("S" mode), independent parameters per sample,
  differentiable w.r.t. the input. Sampling is separate from applying, kornia style:
  ``params = aug.sample(x.shape)`` draws an :class:`AugmentParams` and ``aug.apply(x, params)``
  applies it, as often as needed and to any batch of that shape (Siamese replay), instead of
  reseeding a global RNG; ``aug(x)`` is the two in one.
  The sampled distributions are DSA's (Zhao & Bilen, ICML 2021, ``ParamDiffAug``), not kornia's
  defaults: :class:`DSAScale` samples the input at ``s * (output coordinates)`` with
  ``s ~ U[1/1.2, 1.2]`` per axis (kornia's ``RandomAffine`` scales the other way round), and
  :class:`DSACutout` places the patch centre uniformly over the whole image, clipping the patch at
  the border (kornia's ``RandomErasing`` keeps it inside).
* :class:`CropScaleRotate` - the non-differentiable per-sample augmentation of real images
  used for expert training (one of crop / scale / rotate per image), batched in one affine warp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import kornia.augmentation as KA
from kornia.augmentation import AugmentationBase2D, IntensityAugmentationBase2D
from kornia.augmentation import random_generator as rg
from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

from .config import DEFAULT_DSA_STRATEGY
from .errors import ConfigError


@dataclass(frozen=True)
class DSAConfig:
    """Strengths of the DSA families (defaults of the public DSA/MTT code)."""

    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    crop: float = 0.125
    cutout: float = 0.5
    flip: float = 0.5
    scale: float = 1.2
    rotate: float = 15.0


class MeanPreservingSaturation(IntensityAugmentationBase2D):
    """DSA saturation: ``(x - mean_c(x)) * s + mean_c(x)``, ``s ~ U[0, strength]`` per sample.

    Unlike kornia's HSV saturation it works on normalised tensors of any channel count
    (on one channel it is the identity, as in DSA).
    """

    def __init__(self, strength: float = 2.0, p: float = 1.0) -> None:
        super().__init__(p=p, same_on_batch=False)
        self._param_generator = rg.PlainUniformGenerator(
            (torch.tensor([0.0, strength]), "saturation_factor", None, None))

    def apply_transform(self, input, params, flags, transform=None):
        factor = params["saturation_factor"].to(input).view(-1, 1, 1, 1)
        mean = input.mean(dim=1, keepdim=True)
        return (input - mean) * factor + mean


class MeanPreservingContrast(IntensityAugmentationBase2D):
    """DSA contrast: ``(x - mean(x)) * c + mean(x)``, ``c ~ U[offset, offset + 1]`` per sample."""

    def __init__(self, offset: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p=p, same_on_batch=False)
        self._param_generator = rg.PlainUniformGenerator(
            (torch.tensor([offset, offset + 1.0]), "contrast_factor", None, None))

    def apply_transform(self, input, params, flags, transform=None):
        factor = params["contrast_factor"].to(input).view(-1, 1, 1, 1)
        mean = input.mean(dim=(1, 2, 3), keepdim=True)
        return (input - mean) * factor + mean


class DSAScale(AugmentationBase2D):
    """DSA scale: ``out(p) = in(diag(sx, sy) p)`` (normalised coordinates, bilinear, zero fill),
    with ``sx, sy ~ U[1/ratio, ratio]`` drawn independently per sample.

    A factor above 1 samples a larger area, so the image *shrinks*; this is the inverse of
    kornia's ``RandomAffine(scale=...)``, whose factor enlarges the image.
    """

    def __init__(self, ratio: float = 1.2, p: float = 1.0) -> None:
        super().__init__(p=p, same_on_batch=False)
        self.ratio = float(ratio)

    def generate_parameters(self, batch_shape):
        n, low = batch_shape[0], 1.0 / self.ratio
        return {"scale_x": torch.rand(n) * (self.ratio - low) + low,
                "scale_y": torch.rand(n) * (self.ratio - low) + low}

    def apply_transform(self, input, params, flags, transform=None):
        n = input.shape[0]
        theta = torch.zeros(n, 2, 3, dtype=input.dtype, device=input.device)
        theta[:, 0, 0] = params["scale_x"].to(input)
        theta[:, 1, 1] = params["scale_y"].to(input)
        grid = F.affine_grid(theta, list(input.shape), align_corners=True)
        return F.grid_sample(input, grid, align_corners=True)


class DSACutout(AugmentationBase2D):
    """DSA cutout: a ``round(ratio * H) x round(ratio * W)`` patch set to 0, its centre uniform over
    ``0 .. H`` (and ``0 .. W``; ``H - 1`` for odd patch sizes), clipped by the image border."""

    def __init__(self, ratio: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p=p, same_on_batch=False)
        self.ratio = float(ratio)

    def patch_size(self, height: int, width: int) -> tuple[int, int]:
        return int(height * self.ratio + 0.5), int(width * self.ratio + 0.5)

    def generate_parameters(self, batch_shape):
        n, _, h, w = batch_shape
        ph, pw = self.patch_size(h, w)
        return {"centre_y": torch.randint(0, h + (1 - ph % 2), (n,)),
                "centre_x": torch.randint(0, w + (1 - pw % 2), (n,))}

    def apply_transform(self, input, params, flags, transform=None):
        n, _, h, w = input.shape
        ph, pw = self.patch_size(h, w)
        rows = torch.arange(h, device=input.device).view(1, h)
        cols = torch.arange(w, device=input.device).view(1, w)
        top = params["centre_y"].to(input.device).view(n, 1) - ph // 2
        left = params["centre_x"].to(input.device).view(n, 1) - pw // 2
        inside_rows = (rows >= top) & (rows < top + ph)
        inside_cols = (cols >= left) & (cols < left + pw)
        keep = ~(inside_rows.unsqueeze(2) & inside_cols.unsqueeze(1))
        return input * keep.unsqueeze(1).to(input.dtype)


def dsa_families(image_size: tuple[int, int], cfg: DSAConfig = DSAConfig()) -> dict[str, nn.Module]:
    """The DSA families as kornia modules, keyed by the names used in strategy strings."""
    h, w = image_size
    shift = int(h * cfg.crop + 0.5)
    return {
        "color": KA.ImageSequential(
            KA.RandomBrightness((1.0 - cfg.brightness / 2, 1.0 + cfg.brightness / 2), clip_output=False, p=1.0),
            MeanPreservingSaturation(cfg.saturation),
            MeanPreservingContrast(cfg.contrast),
        ),
        "crop": KA.RandomCrop((h, w), padding=shift, p=1.0),
        "cutout": DSACutout(cfg.cutout),
        "flip": KA.RandomHorizontalFlip(p=cfg.flip),
        "scale": DSAScale(cfg.scale),
        "rotate": KA.RandomRotation(degrees=cfg.rotate, align_corners=True, p=1.0),
    }


class AugmentParams(NamedTuple):
    """Everything needed to replay one augmentation call: the family and the parameters its kornia
    module drew (``module.forward_parameters``)."""

    family: str
    params: Any


class DifferentiableAugmentation(nn.Module):
    """DSA in "S" mode: one family per call, chosen uniformly; replayable parameters.

    :param image_size: (H, W) of the images to augment.
    :param strategy: families joined by ``_`` (default: all six).
    """

    def __init__(self, image_size: tuple[int, int], strategy: str = DEFAULT_DSA_STRATEGY,
                 config: DSAConfig = DSAConfig()) -> None:
        super().__init__()
        available = dsa_families(tuple(image_size), config)
        names = [n for n in strategy.split("_") if n]
        unknown = [n for n in names if n not in available]
        if unknown or not names:
            raise ConfigError(f"unknown DSA family {unknown or strategy!r}; known: {', '.join(available)}")
        self.strategy = strategy
        self.families = nn.ModuleDict({n: available[n] for n in names})
        self.family_names = names

    def sample_family(self) -> str:
        return self.family_names[int(torch.randint(len(self.family_names), (1,)))]

    def sample(self, batch_shape: torch.Size | tuple[int, ...]) -> AugmentParams:
        """Draw the parameters of one call for a batch of ``batch_shape`` (N, C, H, W) from torch's
        global RNG: the family, then that family's per-sample parameters."""
        family = self.sample_family()
        return AugmentParams(family, self.families[family].forward_parameters(torch.Size(batch_shape)))

    def apply(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply drawn parameters to ``x`` (deterministic, differentiable w.r.t. ``x``)."""
        return self.families[params.family](x, params=params.params)

    def forward(self, x: torch.Tensor, params: AugmentParams | None = None) -> torch.Tensor:
        """Augment ``x`` (N, C, H, W): ``apply(x, sample(x.shape))``, or replay ``params``."""
        return self.apply(x, self.sample(x.shape) if params is None else params)


class CropScaleRotate(nn.Module):
    """Per-sample real-image augmentation for expert training (DC's "crop_scale_rotate").

    Each image gets one of: an integer shift of up to ``crop`` pixels, an independent x/y
    rescale by a factor in ``[1 - scale, 1 + scale]``, or a rotation by up to ``rotate``
    degrees, all about the image centre and filled with the channel mean, in one batched warp.
    Not differentiable by design (it is applied to real data only).
    """

    def __init__(self, crop: int = 4, scale: float = 0.2, rotate: float = 45.0) -> None:
        super().__init__()
        self.crop, self.scale, self.rotate = crop, scale, rotate

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        choice = torch.randint(3, (n,))
        angle = torch.where(choice == 2, (torch.rand(n) * 2 - 1) * self.rotate, torch.zeros(n))
        factors = 1 + (torch.rand(n, 2) * 2 - 1) * self.scale
        factors = torch.where((choice == 1).unsqueeze(1), factors, torch.ones(n, 2))
        shift = torch.randint(-self.crop, self.crop + 1, (n, 2)).float()
        shift = torch.where((choice == 0).unsqueeze(1), shift, torch.zeros(n, 2))
        center = torch.tensor([(w - 1) / 2, (h - 1) / 2]).expand(n, 2)
        matrix = get_rotation_matrix2d(center, angle, factors)
        matrix[:, :, 2] += shift
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        warped = warp_affine(x - mean, matrix.to(x), (h, w), mode="bilinear", padding_mode="zeros",
                             align_corners=True)
        return warped + mean


def crop_scale_rotate(image_size: tuple[int, int]) -> CropScaleRotate:
    """The public MTT experts' augmentation (``--augmentation crop_scale_rotate``)."""
    return CropScaleRotate()


def dsa_for_experts(image_size: tuple[int, int]) -> DifferentiableAugmentation:
    """DSA on the real images (``--augmentation dsa``)."""
    return DifferentiableAugmentation(image_size)


def no_augmentation(image_size: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The images as they are (``--augmentation none``)."""
    return _unchanged


def _unchanged(x: torch.Tensor) -> torch.Tensor:
    return x
