"""The validation split (``--validation K``): training images held out to score evaluations instead
of the test split, so that choosing hyper-parameters never reads the test set.

K // classes images of every class are drawn from the training split by ``--validation-seed``
(the same files and values always give the same images) and removed from it: the experts, the
synthetic set's real initialisation, the random real subsets and the full-data networks see only
the rest, and every evaluation scores the held-out images. ``load_dataset`` then reads the train
split alone: the test files are never opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..config import TEST_SPLIT, split_description
from ..errors import ConfigError


@dataclass(frozen=True)
class ValidationSplit:
    """``size`` (K) training images, K // classes per class, chosen by ``seed``."""

    size: int
    seed: int = 0

    @classmethod
    def of(cls, options: Any) -> "ValidationSplit | None":
        """The split that ``options`` (a config with ``validation`` and ``validation_seed``) asks
        for; None for ``--validation 0`` (no split: evaluations score the test split)."""
        return cls(options.validation, options.validation_seed) if options.validation else None

    def describe(self) -> str:
        """``validation (K=500, seed=0)``: what every record of a score on this split says."""
        return split_description(self.size, self.seed)

    def per_class(self, num_classes: int, dataset: str) -> int:
        """K // classes: the images held out of every class of ``dataset``.

        :raises ConfigError: K is smaller than the number of classes."""
        if self.size < num_classes:
            raise ConfigError(f"--validation {self.size} is smaller than the number of classes of {dataset} "
                              f"({num_classes}): every class needs at least one validation image")
        return self.size // num_classes

    def indices(self, labels: torch.Tensor, num_classes: int, dataset: str) -> torch.Tensor:
        """Positions in the training split (``labels``, in file order) of the held-out images,
        ascending: K // classes random ones of every class, drawn by ``seed``.

        :raises ConfigError: K is smaller than the number of classes, or would leave a class of
            ``dataset`` without a training image.
        """
        per_class = self.per_class(num_classes, dataset)
        labels = labels.cpu()
        counts = torch.bincount(labels, minlength=num_classes)
        smallest = int(counts.min())
        if per_class >= smallest:
            raise ConfigError(f"--validation {self.size} holds out {per_class} images per class but the smallest "
                              f"class of {dataset} has {smallest} training images: none would be left to train on")
        generator = torch.Generator().manual_seed(self.seed)
        chosen = []
        for label in range(num_classes):
            members = torch.nonzero(labels == label).flatten()
            chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
        return torch.sort(torch.cat(chosen)).values


def split_name(validation: ValidationSplit | None) -> str:
    """What evaluations score: ``test``, or the validation split's :meth:`~ValidationSplit.describe`."""
    return validation.describe() if validation else TEST_SPLIT
