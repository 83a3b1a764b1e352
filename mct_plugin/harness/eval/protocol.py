"""Evaluation protocol: train fresh networks on a (synthetic or real) set, test on real data.

The public MTT/MCT ``evaluate_synset`` (``utils.py`` of both codes): SGD with momentum 0.9 and weight
decay 5e-4, learning rate = the learned alpha, ``epoch_eval_train + 1`` passes over the set with
the rate decayed x0.1 after pass ``epoch_eval_train // 2 + 1`` (:func:`learning_rate_schedule`),
DSA augmentation on every batch, then accuracy on the full real test set; reported as mean +-
std over ``num_eval`` networks. The same seeds
initialise the networks of every compared set, so the comparison with a random real subset
of the same size is paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..augment import DifferentiableAugmentation
from ..config import EvalSettings
from ..data import RealDataset
from ..io.metric_names import AccuracyKeys
from .._registry import ModelRegistry
from ..runtime.distributed import SINGLE_PROCESS, DistContext
from ..training import test_accuracy, train_epoch


@dataclass
class EvalResult:
    """Test accuracies (fractions in [0, 1]) of ``num_eval`` networks of one architecture trained on
    one set, and the distillation ``iteration`` that set is from (None: a set of no iteration, such
    as the random real subset, or one evaluated outside a run)."""

    model: str
    accuracies: list[float] = field(default_factory=list)
    iteration: int | None = None

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies) if self.accuracies else float("nan")

    @property
    def std(self) -> float:  # population std, as the public code reports (np.std)
        if not self.accuracies:
            return float("nan")
        m = self.mean
        return math.sqrt(sum((a - m) ** 2 for a in self.accuracies) / len(self.accuracies))

    @property
    def networks(self) -> int:
        return len(self.accuracies)

    def improves_on(self, best: EvalResult | None) -> bool:
        """Whether this evaluation replaces ``best`` as the best of a run: the first evaluation with
        the highest mean is the best (a later equal mean does not replace it). The one rule for the
        set kept in ``best/``, for the run's summary and for whoever reads a recorded run."""
        return best is None or self.mean > best.mean

    def as_dict(self) -> dict:
        """``{"model", "accuracies", "mean", "std"}``: how ``eval.json`` gives it."""
        return {"model": self.model, "accuracies": list(self.accuracies), "mean": self.mean, "std": self.std}

    def to_row(self, keys: AccuracyKeys) -> dict:
        """The entries of a ``metrics.jsonl`` row that record this accuracy under ``keys``."""
        return {keys.mean: self.mean, keys.std: self.std, keys.accuracies: self.accuracies}

    @classmethod
    def from_row(cls, row: dict, model: str, keys: AccuracyKeys, iteration: int | None = None) -> EvalResult | None:
        """The accuracy of ``model`` that ``row`` records under ``keys`` (None: it records none)."""
        if keys.accuracies not in row:
            return None
        return cls(model, list(row[keys.accuracies]), iteration)

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f} +- {100 * self.std:.2f}"


def learning_rate_schedule(lr: float, epochs: int) -> list[float]:
    """The step size of every pass over the set, as the public ``evaluate_synset``: ``epochs + 1``
    passes, ``lr`` up to and including pass ``epochs // 2 + 1``, then ``lr / 10`` (with a fresh
    optimizer, so the momentum restarts at the decay)."""
    boundary = epochs // 2 + 1
    return [lr if epoch <= boundary else lr * 0.1 for epoch in range(epochs + 1)]


def network_seed(seed: int, index: int) -> int:
    return seed * 10_007 + index


def train_and_test(model_name: str, images: torch.Tensor, labels: torch.Tensor, lr: float,
                   data: RealDataset, config: EvalSettings, seed: int, *, models: ModelRegistry) -> float:
    """Train one fresh ``model_name`` (built by ``models``) from ``seed`` on (images, labels); return
    test accuracy."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = models.create(model_name, data.spec.channels, data.num_classes, data.spec.image_size).to(data.device)
        augment = DifferentiableAugmentation(data.spec.image_size, config.dsa_strategy).to(data.device) \
            if config.dsa else None
        images, labels = images.detach().to(data.device), labels.detach().to(data.device)
        schedule = learning_rate_schedule(float(lr), config.epoch_eval_train)
        optimizer = None
        for rate in schedule:
            if optimizer is None or rate != optimizer.param_groups[0]["lr"]:
                optimizer = torch.optim.SGD(net.parameters(), lr=rate, momentum=config.momentum,
                                            weight_decay=config.weight_decay)
            train_epoch(net, images, labels, optimizer, config.batch_train, augment)
        _, accuracy = test_accuracy(net, data.test_images, data.test_labels, batch_size=256)
    return accuracy


def evaluate_set(images: torch.Tensor, labels: torch.Tensor, lr: float, data: RealDataset,
                 model_name: str, config: EvalSettings, *, models: ModelRegistry,
                 dist: DistContext = SINGLE_PROCESS) -> EvalResult:
    """Accuracy of ``config.num_eval`` fresh ``model_name`` networks (built by ``models``) trained on
    the set.

    With the context of several processes (``dist``; a collective then: every rank calls it) the
    networks are dealt to the ranks and gathered (network ``i`` always has the seed
    ``network_seed(config.seed, i)``, so the result does not depend on the sharding).
    """
    def train(i: int, _) -> float:
        return train_and_test(model_name, images, labels, lr, data, config, network_seed(config.seed, i), models=models)

    return EvalResult(model_name, dist.map_sharded(range(config.num_eval), train))


def random_real_subset(data: RealDataset, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` random real training images of every class, with their labels."""
    index = data.balanced_indices(per_class, torch.Generator().manual_seed(seed))
    return data.train_images[index], data.train_labels[index]
