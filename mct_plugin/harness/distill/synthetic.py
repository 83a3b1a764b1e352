"""The learnable synthetic set: images, labels and the student step size alpha.

Saved as ``images.pt`` (N, C, H, W float32), ``labels.pt`` ((N,) int64 or (N, classes) float32
soft labels) and ``lr.pt`` (a 0-d float32 tensor), the files the DD-Ranking benchmark reads
(and :func:`~mct_plugin.harness.eval.saved_set.load_synthetic` reads back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import RealDataset
from ..errors import ConfigError
from ..io.atomic import atomic_torch_save

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
