"""Real training data in memory: normalised (or ZCA-whitened) tensors with class-indexed access."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import ConfigError
from ..io.paths import refuse_a_file
from .datasets import DatasetSpec, RawSplits
from .validation import ValidationSplit, split_name


@dataclass
class RealDataset:
    """Train and test splits as float tensors (N, C, H, W), ready for the network.

    Images are normalised with the dataset's mean/std, or ZCA-whitened when ``zca`` is set
    (then, as in the public MTT code, without mean/std normalisation first). With a
    ``validation`` split, ``test_images``/``test_labels`` hold the held-out training images (the
    images every evaluation scores) and the train split holds the rest; :attr:`split` says which.
    """

    spec: DatasetSpec
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    _class_index: list[torch.Tensor] | None = field(default=None, repr=False)
    validation: ValidationSplit | None = None

    @property
    def split(self) -> str:
        """What the evaluations score: ``test``, or ``validation (K=..., seed=...)``."""
        return split_name(self.validation)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.spec.channels, *self.spec.image_size)

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def require_split(self, validation: ValidationSplit | None) -> None:
        """Check that the data was loaded with ``validation`` held out (None: with its test split).

        :raises ConfigError: it holds another split (data loaded by the caller for a config
            with another ``--validation``)."""
        if self.validation != validation:
            raise ConfigError(f"the data given scores on the {self.split} split but the options ask for the "
                              f"{split_name(validation)} split; load it with load_dataset(..., "
                              f"validation=ValidationSplit.of(config))")

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
                 download: bool = False, zca: bool = False, validation: ValidationSplit | None = None) -> RealDataset:
    """Read the dataset of ``spec`` (``components.datasets.get(name)``) into a :class:`RealDataset`.

    With a ``validation`` split only the train split is read (the test files are never opened):
    the split's images become the evaluation images and the rest the training images (ZCA is
    fitted on the rest alone).

    :raises DataNotFoundError: the files are missing; the message says where we looked.
    :raises ConfigError: ``data_path`` is a file (one of the dataset's files, say), not a folder;
        or the validation split does not fit the dataset.
    """
    if data_path:
        data_path = Path(data_path).expanduser()
        refuse_a_file(data_path, "--data-path", f"pass the folder that holds the dataset files ({data_path.parent})")
    raw = spec.load(data_path or None, download, test=validation is None)
    if validation is not None:
        raw = _hold_out(raw, validation, spec)
    train, test = _to_float(raw.train_images), _to_float(raw.test_images)
    if zca:
        whitening = fit_zca(train)
        with torch.no_grad():
            train, test = whitening(train), whitening(test)
    else:
        train, test = _normalise(train, spec), _normalise(test, spec)
    return RealDataset(spec, train.contiguous(), raw.train_labels, test.contiguous(), raw.test_labels, raw.source,
                       validation=validation)


def _hold_out(raw: RawSplits, validation: ValidationSplit, spec: DatasetSpec) -> RawSplits:
    """``raw``'s train split divided: the ``validation`` images as the test split, the others (in
    file order) as the train split."""
    held_out = validation.indices(raw.train_labels, spec.num_classes, spec.name)
    kept = torch.ones(len(raw.train_labels), dtype=torch.bool)
    kept[held_out] = False
    return RawSplits(raw.train_images[kept], raw.train_labels[kept], raw.train_images[held_out],
                     raw.train_labels[held_out], raw.source)
