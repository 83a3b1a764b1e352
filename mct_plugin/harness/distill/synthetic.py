"""The learnable synthetic set: images, labels and the student step size alpha.

Saved as ``images.pt`` (N, C, H, W float32), ``labels.pt`` ((N,) int64 or (N, classes) float32
soft labels) and ``lr.pt`` (a 0-d float32 tensor), the files the DD-Ranking benchmark reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import RealDataset
from ..errors import ConfigError, RunDirectoryError
from ..io.atomic import atomic_torch_save
from ..io.untrusted import torch_load_untrusted

SYNTHETIC_FILES = ("images.pt", "labels.pt", "lr.pt")


@dataclass
class SyntheticSet:
    images: torch.Tensor  # leaf, requires_grad
    labels: torch.Tensor  # (N,) hard labels used to build the set
    lr: torch.Tensor  # 0-d leaf, requires_grad

    @classmethod
    def initialise(cls, data: RealDataset, ipc: int, pix_init: str = "real", lr_init: float = 0.01) -> "SyntheticSet":
        """``ipc`` images per class from random real images (``pix_init="real"``) or N(0, 1) noise."""
        if ipc < 1:
            raise ConfigError(f"--ipc must be at least 1 (got {ipc})")
        smallest = min(data.class_counts())
        if ipc > smallest:
            raise ConfigError(f"--ipc {ipc} is larger than the smallest class of {data.spec.name} ({smallest} images)")
        labels = torch.arange(data.num_classes).repeat_interleave(ipc)
        if pix_init == "real":
            images = torch.cat([data.images_of_class(c, ipc) for c in range(data.num_classes)])
        elif pix_init == "noise":
            images = torch.randn(len(labels), *data.image_shape, device=data.device)
        else:
            raise ConfigError(f"--pix-init must be 'real' or 'noise' (got {pix_init!r})")
        return cls(images.detach().clone().requires_grad_(True), labels.to(data.device),
                   torch.tensor(float(lr_init), device=data.device).requires_grad_(True))

    def save(self, directory: str | Path, labels: torch.Tensor | None = None, suffix: str = "") -> None:
        """Write images.pt, labels.pt (``labels`` if given, e.g. soft labels) and lr.pt
        (``images{suffix}.pt`` ... with a suffix, e.g. the per-evaluation snapshots)."""
        directory = Path(directory)
        atomic_torch_save(self.images.detach().cpu().clone(), directory / f"images{suffix}.pt")
        atomic_torch_save((self.labels if labels is None else labels).detach().cpu().clone(),
                          directory / f"labels{suffix}.pt")
        atomic_torch_save(self.lr.detach().cpu().clone(), directory / f"lr{suffix}.pt")


def load_synthetic(directory: str | Path, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(images, labels, lr) from a run directory, loaded weights-only and checked: a non-empty
    finite (N, C, H, W) float tensor, one label per image (class indices in ``0..num_classes-1``
    or soft labels of width ``num_classes``: finite, non-negative), a finite positive step size."""
    directory = Path(directory)
    missing = [name for name in SYNTHETIC_FILES if not (directory / name).is_file()]
    if missing:
        raise RunDirectoryError(f"{directory} has no {', '.join(missing)}: not a finished distillation run")
    images = torch_load_untrusted(directory / "images.pt", mmap=False)
    labels = torch_load_untrusted(directory / "labels.pt", mmap=False)
    lr = torch_load_untrusted(directory / "lr.pt", mmap=False)
    where = {name: directory / name for name in SYNTHETIC_FILES}
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise RunDirectoryError(f"{where['images.pt']} is not an (N, C, H, W) floating-point tensor")
    if images.shape[0] == 0 or images.numel() == 0:
        raise RunDirectoryError(f"{where['images.pt']} holds no images")
    if not torch.isfinite(images).all():
        raise RunDirectoryError(f"{where['images.pt']} contains NaN or Inf")
    if not isinstance(labels, torch.Tensor) or labels.dim() not in (1, 2) or labels.shape[0] != images.shape[0]:
        raise RunDirectoryError(f"{where['labels.pt']} does not hold one label per image")
    if labels.dim() == 1:
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise RunDirectoryError(f"{where['labels.pt']} holds {labels.dtype} labels; class indices must be integers")
        if int(labels.min()) < 0 or (num_classes is not None and int(labels.max()) >= num_classes):
            raise RunDirectoryError(f"{where['labels.pt']} holds class indices {int(labels.min())}..{int(labels.max())}, "
                                    f"outside 0..{(num_classes or 0) - 1}")
        labels = labels.long()
    else:
        if num_classes is not None and labels.shape[1] != num_classes:
            raise RunDirectoryError(f"{where['labels.pt']} holds soft labels of width {labels.shape[1]} for "
                                    f"{num_classes} classes")
        if not labels.is_floating_point() or not torch.isfinite(labels).all() or (labels < 0).any():
            raise RunDirectoryError(f"{where['labels.pt']}: soft labels must be finite, non-negative numbers")
        labels = labels.float()
    if not isinstance(lr, torch.Tensor) or lr.numel() != 1 or not lr.is_floating_point():
        raise RunDirectoryError(f"{where['lr.pt']} is not a scalar floating-point tensor")
    rate = float(lr)
    if not (rate > 0 and rate < float("inf")):
        raise RunDirectoryError(f"{where['lr.pt']} holds the step size {rate}; it must be a finite positive number")
    return images.float(), labels, rate
