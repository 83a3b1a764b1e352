"""Real training data in memory: normalised (or ZCA-whitened) tensors with class-indexed access."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import ConfigError
from ..io.paths import refuse_a_file
from .datasets import DatasetSpec


@dataclass
class RealDataset:
    """Train and test splits as float tensors (N, C, H, W), ready for the network.

    Images are normalised with the dataset's mean/std, or ZCA-whitened when ``zca`` is set
    (then, as in the public MTT code, without mean/std normalisation first).
    """

    spec: DatasetSpec
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    _class_index: list[torch.Tensor] | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.spec.channels, *self.spec.image_size)

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def to(self, device: torch.device | str) -> "RealDataset":
        """A copy with every tensor on ``device`` (the same object if already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return replace(self, train_images=self.train_images.to(device), train_labels=self.train_labels.to(device),
                       test_images=self.test_images.to(device), test_labels=self.test_labels.to(device),
                       _class_index=None)

    def class_indices(self) -> list[torch.Tensor]:
        """Indices of the training images of each class (computed once)."""
        if self._class_index is None:
            labels = self.train_labels.cpu()
            order = torch.argsort(labels, stable=True)
            counts = torch.bincount(labels, minlength=self.num_classes).tolist()
            self._class_index = list(torch.split(order, counts))
        return self._class_index

    def class_counts(self) -> list[int]:
        return [len(ix) for ix in self.class_indices()]

    def images_of_class(self, label: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` distinct random training images of class ``label``."""
        index = self.class_indices()[label]
        if n > len(index):
            raise ConfigError(
                f"asked for {n} images of class {label} but {self.spec.name} has only {len(index)}"
            )
        chosen = index[torch.randperm(len(index), generator=generator)[:n]]
        return self.train_images[chosen.to(self.device)]

    def balanced_indices(self, per_class: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Indices of ``per_class`` random training images from every class."""
        smallest = min(self.class_counts())
        if per_class > smallest:
            raise ConfigError(
                f"{per_class} images per class requested but the smallest class of "
                f"{self.spec.name} has {smallest}"
            )
        parts = [ix[torch.randperm(len(ix), generator=generator)[:per_class]] for ix in self.class_indices()]
        return torch.cat(parts)

    def train_subset(self, total: int, seed: int = 0) -> "RealDataset":
        """A copy whose training split is ``total`` class-balanced random images."""
        per_class = total // self.num_classes
        if per_class < 1:
            raise ConfigError(f"--subset {total} is smaller than the number of classes ({self.num_classes})")
        index = self.balanced_indices(per_class, torch.Generator().manual_seed(seed))
        index = index.to(self.device)
        return replace(self, train_images=self.train_images[index], train_labels=self.train_labels[index],
                       _class_index=None)


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.to(torch.float32).div_(255.0)


def _normalise(images: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return images.sub_(mean).div_(std)


def fit_zca(train: torch.Tensor):
    """kornia ZCA whitening (eps 0.1, as in the public MTT code) fitted on ``train``."""
    from kornia.enhance import ZCAWhitening

    return ZCAWhitening(eps=0.1, compute_inv=True).fit(train)


def load_dataset(spec: DatasetSpec, data_path: str | Path | None = None, *,
                 download: bool = False, zca: bool = False) -> RealDataset:
    """Read the dataset of ``spec`` (``components.datasets.get(name)``) into a :class:`RealDataset`.

    :raises DataNotFoundError: the files are missing; the message says where we looked.
    :raises ConfigError: ``data_path`` is a file (one of the dataset's files, say), not a folder.
    """
    if data_path:
        data_path = Path(data_path).expanduser()
        refuse_a_file(data_path, "--data-path", f"pass the folder that holds the dataset files ({data_path.parent})")
    raw = spec.load(data_path or None, download)
    train, test = _to_float(raw.train_images), _to_float(raw.test_images)
    if zca:
        whitening = fit_zca(train)
        with torch.no_grad():
            train, test = whitening(train), whitening(test)
    else:
        train, test = _normalise(train, spec), _normalise(test, spec)
    return RealDataset(spec, train.contiguous(), raw.train_labels, test.contiguous(), raw.test_labels,
                       raw.source)
