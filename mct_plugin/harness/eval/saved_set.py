"""Reading a distilled set back from a run directory (``images.pt``, ``labels.pt``, ``lr.pt``, as
:meth:`~mct_plugin.harness.distill.synthetic.SyntheticSet.save` writes them), checked like any
file a stranger may have made."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import RunDirectoryError
from ..io.untrusted import torch_load_untrusted

SYNTHETIC_FILES = ("images.pt", "labels.pt", "lr.pt")


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
