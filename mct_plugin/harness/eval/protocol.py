"""Evaluation protocol: train fresh networks on a (synthetic or real) set, test on real data.

The public MTT/MCT ``evaluate_synset`` (``utils.py`` of both codes): SGD with momentum 0.9 and weight
decay 5e-4, learning rate = the learned alpha, ``epoch_eval_train + 1`` passes over the set with
the rate decayed x0.1 after pass ``epoch_eval_train // 2 + 1`` (:func:`learning_rate_schedule`),
DSA augmentation on every batch, then accuracy on the full real test set; reported as mean +-
std over ``num_eval`` networks (one network: its accuracy alone, no std). The same seeds
initialise the networks of every compared set, so the comparison with a random real subset
of the same size is paired.

A network *ends at chance* (:func:`ended_at_chance`) when its test accuracy is at most
``1/classes`` + 2 points, or, trained on hard labels, when the mean training loss of its last pass
is at least 0.95 ln(classes) (the loss of a uniform guess is ln(classes)): it learned nothing, and
its accuracy says nothing about the set it trained on.
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


CHANCE_MARGIN = 0.02  # accuracy at most 1/classes + 2 points
CHANCE_LOSS_FRACTION = 0.95  # last-pass training loss at least 0.95 ln(classes)


def chance_rule(classes: int) -> str:
    """The rule of :func:`ended_at_chance` in words, with its numbers for ``classes`` classes."""
    return (f"test accuracy at most 1/{classes} + {100 * CHANCE_MARGIN:g} points "
            f"({100 * (1 / classes + CHANCE_MARGIN):.2f}%), or on hard labels a last-pass training loss of at least "
            f"{CHANCE_LOSS_FRACTION:g} ln({classes}) = {CHANCE_LOSS_FRACTION * math.log(classes):.2f}")


def ended_at_chance(accuracy: float, train_loss: float | None, classes: int, *, hard: bool) -> bool:
    """Whether a network learned nothing (see the module docstring); ``train_loss`` None: not
    measured, ``hard``: it trained on class indices (a soft label's own entropy bounds its loss)."""
    if accuracy <= 1 / classes + CHANCE_MARGIN:
        return True
    return hard and train_loss is not None and train_loss >= CHANCE_LOSS_FRACTION * math.log(classes)


@dataclass
class EvalResult:
    """Test accuracies (fractions in [0, 1]) of ``num_eval`` networks of one architecture trained on
    one set, the mean training loss of each network's last pass over the set (``train_losses``;
    empty where not measured), and the distillation ``iteration`` that set is from (None: a set of
    no iteration, such as the random real subset, or one evaluated outside a run)."""

    model: str
    accuracies: list[float] = field(default_factory=list)
    iteration: int | None = None
    train_losses: list[float] = field(default_factory=list)

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

    def at_chance(self, classes: int, *, hard: bool) -> int:
        """How many of the networks ended at chance (:func:`ended_at_chance`)."""
        losses = self.train_losses or [None] * len(self.accuracies)
        return sum(ended_at_chance(a, loss, classes, hard=hard) for a, loss in zip(self.accuracies, losses))

    def as_dict(self) -> dict:
        """``{"model", "accuracies", "mean", "std", "networks", "train_losses"}``: how ``eval.json``
        gives it (``std`` None for one network)."""
        return {"model": self.model, "accuracies": list(self.accuracies), "mean": self.mean,
                "std": self.std if self.networks > 1 else None, "networks": self.networks,
                "train_losses": list(self.train_losses)}

    def to_row(self, keys: AccuracyKeys) -> dict:
        """The entries of a ``metrics.jsonl`` row that record this accuracy under ``keys``."""
        return {keys.mean: self.mean, keys.std: self.std, keys.accuracies: self.accuracies}

    @classmethod
    def of_networks(cls, model: str, trained: list[tuple[float, float]]) -> EvalResult:
        """From the (accuracy, training loss) of each network (:func:`train_and_test`)."""
        return cls(model, [accuracy for accuracy, _ in trained], train_losses=[loss for _, loss in trained])

    @classmethod
    def from_row(cls, row: dict, model: str, keys: AccuracyKeys, iteration: int | None = None) -> EvalResult | None:
        """The accuracy of ``model`` that ``row`` records under ``keys`` (None: it records none)."""
        if keys.accuracies not in row:
            return None
        return cls(model, list(row[keys.accuracies]), iteration)

    def __str__(self) -> str:
        """``mean +- std`` in percent; one network: its accuracy alone (its std says nothing)."""
        return f"{100 * self.mean:.2f}" + (f" +- {100 * self.std:.2f}" if self.networks > 1 else "")


def learning_rate_schedule(lr: float, epochs: int) -> list[float]:
    """The step size of every pass over the set, as the public ``evaluate_synset``: ``epochs + 1``
    passes, ``lr`` up to and including pass ``epochs // 2 + 1``, then ``lr / 10`` (with a fresh
    optimizer, so the momentum restarts at the decay)."""
    boundary = epochs // 2 + 1
    return [lr if epoch <= boundary else lr * 0.1 for epoch in range(epochs + 1)]


def network_seed(seed: int, index: int) -> int:
    return seed * 10_007 + index


def train_and_test(model_name: str, images: torch.Tensor, labels: torch.Tensor, lr: float,
                   data: RealDataset, config: EvalSettings, seed: int, *, models: ModelRegistry) -> tuple[float, float]:
    """Train one fresh ``model_name`` (built by ``models``) from ``seed`` on (images, labels), its
    forward passes at ``config.eval_precision``; return (test accuracy, mean training loss of the
    last pass)."""
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
            train_loss, _ = train_epoch(net, images, labels, optimizer, config.batch_train, augment,
                                        config.eval_precision)
        _, accuracy = test_accuracy(net, data.test_images, data.test_labels, batch_size=256,
                                    precision=config.eval_precision)
    return accuracy, train_loss


def evaluate_set(images: torch.Tensor, labels: torch.Tensor, lr: float, data: RealDataset,
                 model_name: str, config: EvalSettings, *, models: ModelRegistry,
                 dist: DistContext = SINGLE_PROCESS) -> EvalResult:
    """Accuracy of ``config.num_eval`` fresh ``model_name`` networks (built by ``models``) trained on
    the set.

    With the context of several processes (``dist``; a collective then: every rank calls it) the
    networks are dealt to the ranks and gathered (network ``i`` always has the seed
    ``network_seed(config.seed, i)``, so the result does not depend on the sharding).
    """
    def train(i: int, _) -> tuple[float, float]:
        return train_and_test(model_name, images, labels, lr, data, config, network_seed(config.seed, i), models=models)

    return EvalResult.of_networks(model_name, dist.map_sharded(range(config.num_eval), train))


def random_real_subset(data: RealDataset, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` random real training images of every class, with their labels."""
    index = data.balanced_indices(per_class, torch.Generator().manual_seed(seed))
    return data.train_images[index], data.train_labels[index]
