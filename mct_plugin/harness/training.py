"""Plain network training and testing on in-memory tensors (experts and evaluation share it)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .runtime.precision import FP32, autocast

Augment = Callable[[torch.Tensor], torch.Tensor]


def hard_labels(labels: torch.Tensor) -> torch.Tensor:
    """Class indices from class indices (N,) or soft labels (N, classes)."""
    return labels.argmax(dim=1) if labels.dim() == 2 else labels


def train_epoch(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                optimizer: torch.optim.Optimizer, batch_size: int, augment: Augment | None = None,
                precision: str = FP32) -> tuple[float, float]:
    """One shuffled pass of SGD over ``images``; labels may be class indices or soft (N, classes);
    the forward passes at ``precision`` (:mod:`.runtime.precision`; the augmentation stays float32).

    :returns: (mean loss, accuracy) over the epoch, measured on the augmented batches.
    """
    model.train()
    order = torch.randperm(len(images))
    total_loss, correct = 0.0, 0
    for batch in torch.split(order, batch_size):
        x, y = images[batch], labels[batch]
        if augment is not None:
            x = augment(x)
        with autocast(precision, x.device):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(batch)
        correct += int((logits.argmax(1) == hard_labels(y)).sum())
    return total_loss / len(images), correct / len(images)


@torch.no_grad()
def test_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  batch_size: int = 1000, precision: str = FP32) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode on ``images``, its forward passes at
    ``precision``."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        with autocast(precision, x.device):
            logits = model(x)
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    return total_loss / len(images), correct / len(images)
