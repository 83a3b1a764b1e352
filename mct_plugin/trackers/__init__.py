"""Experiment trackers as ``dd_harness`` plugins (``--track tensorboard``, ``--track wandb``).

Each is its own entry point and imports only :mod:`mct_plugin.harness.api`; the packages they
need are optional extras (``pip install 'mct_plugin[tensorboard]'`` / ``'mct_plugin[wandb]'``).
Metric names follow the public MTT code's wandb dashboards: ``Grand_Loss``, ``Synthetic_LR``,
``Start_Epoch``, ``Accuracy/<model>``, ``Std/<model>``, ``Max_Accuracy/<model>``,
``Synthetic_Images``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def image_grid(images: torch.Tensor, per_row: int = 10, clip: float = 2.5) -> torch.Tensor:
    """(3, H, W) float grid in [0, 1] of the synthetic images, clipped at ``clip`` std as the
    public code's ``Clipped_Synthetic_Images`` (grayscale images are repeated on 3 channels)."""
    import torch  # a tracker's module loads without torch; drawing images needs it

    x = images.detach().float().cpu()
    mean, std = x.mean(), x.std().clamp_min(1e-8)
    x = x.clamp(mean - clip * std, mean + clip * std)
    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    n, c, h, w = x.shape
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    grid = torch.zeros(c, rows * (h + 2), cols * (w + 2))
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + 2) + 1:r * (h + 2) + 1 + h, q * (w + 2) + 1:q * (w + 2) + 1 + w] = x[i]
    return grid


def metrics_of_iteration(row: dict) -> dict[str, float]:
    return {"Grand_Loss": row["loss"], "Synthetic_LR": row["alpha"], "Start_Epoch": row["start_epoch"]}


def metrics_of_evaluation(evaluation, best: dict[str, float]) -> dict[str, float]:
    """Accuracy, std and running maximum per architecture (``best`` is updated in place)."""
    out = {}
    for model, result in evaluation.results.items():
        best[model] = max(best.get(model, 0.0), result.mean)
        out.update({f"Accuracy/{model}": result.mean, f"Std/{model}": result.std, f"Max_Accuracy/{model}": best[model]})
    return out
