"""Experiment trackers as ``dd_harness`` plugins (``--track tensorboard``, ``--track wandb``).

Each is its own entry point and imports only :mod:`mct_plugin.harness.api`; the packages they
need are optional extras (``pip install 'mct_plugin[tensorboard]'`` / ``'mct_plugin[wandb]'``).
What they log follows the public MTT code's wandb dashboards (``distill.py``):

* every iteration: ``Grand_Loss``, ``Start_Epoch`` and ``Synthetic_LR``, the alpha the student
  used in that iteration (so step 0 shows the initial alpha, before its first update);
* every evaluation: ``Accuracy/<model>``, ``Std/<model>``, ``Max_Accuracy/<model>`` and
  ``Max_Std/<model>`` (the std of the best evaluation, as the public code), the histogram
  ``Pixels`` of the synthetic pixels, ``Pixels/Max_Channel_Std`` (the largest per-channel std
  of the synthetic pixels: a set whose pixels run away shows here first), and two image grids,
  each image upsampled (nearest) to at least 128 px a side and scaled to its own range:
  ``Synthetic_Images`` and ``Clipped_Synthetic_Images/std_2.5`` (pixels clipped to the set's
  mean +- 2.5 std first, which is what makes ZCA-whitened sets readable);
* at the start: the run's options and its evaluation protocol as text.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MIN_IMAGE_SIDE = 128  # px: a 28x28 image is drawn 5x, a 32x32 one 4x (the public code's 4x)
MAX_GRID_SIDE = 4096  # px: large sets (ipc 50) are upsampled less rather than drawn into huge images
CLIP_STD = 2.5  # the public code's Clipped_Synthetic_Images/std_2.5


def image_grid(images: torch.Tensor, per_row: int = 10, clip: float | None = None) -> torch.Tensor:
    """(3, H, W) float grid in [0, 1] of ``images`` (N, C, h, w): each image scaled to its own
    range and upsampled by the integer factor that makes its sides at least
    :data:`MIN_IMAGE_SIDE` px (less where the grid would exceed :data:`MAX_GRID_SIDE`), with a
    one-pixel frame; with ``clip``, pixels are first clipped to the set's mean +- ``clip`` std.
    Grayscale images are repeated on 3 channels."""
    import torch  # a tracker's module loads without torch; drawing images needs it

    x = images.detach().float().cpu().nan_to_num()
    if clip is not None:
        mean, std = x.mean(), x.std().clamp_min(1e-8)
        x = x.clamp(mean - clip * std, mean + clip * std)
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    x = (x - low) / (x.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    n, c, h, w = x.shape
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    factor = max(1, math.ceil(MIN_IMAGE_SIDE / min(h, w)))
    factor = max(1, min(factor, MAX_GRID_SIDE // (max(rows * h, cols * w) + 1)))
    x = x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    h, w = h * factor, w * factor
    grid = torch.zeros(c, rows * (h + 2), cols * (w + 2))
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + 2) + 1:r * (h + 2) + 1 + h, q * (w + 2) + 1:q * (w + 2) + 1 + w] = x[i]
    return grid


def image_grids(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The grids logged at every evaluation, by name (see the module docstring)."""
    return {"Synthetic_Images": image_grid(images),
            f"Clipped_Synthetic_Images/std_{CLIP_STD}": image_grid(images, clip=CLIP_STD)}


def max_channel_std(images: torch.Tensor) -> float:
    """The largest, over channels, of the std of the synthetic pixels of that channel."""
    x = images.detach().float()
    return float(x.transpose(0, 1).reshape(x.shape[1], -1).std(dim=1).max())


def metrics_of_iteration(row: dict) -> dict[str, float]:
    return {"Grand_Loss": row["loss"], "Synthetic_LR": row.get("alpha_used", row["alpha"]),
            "Start_Epoch": row["start_epoch"]}


def metrics_of_evaluation(evaluation, best: dict) -> dict[str, float]:
    """Accuracy, std, and the best evaluation so far with its std per architecture (``best``,
    model -> ``EvalResult``, is updated in place by the harness's one rule,
    ``EvalResult.improves_on``), and the pixels' largest per-channel std."""
    out = {}
    for model, result in evaluation.results.items():
        if result.improves_on(best.get(model)):
            best[model] = result
        out.update({f"Accuracy/{model}": result.mean, f"Std/{model}": result.std,
                    f"Max_Accuracy/{model}": best[model].mean, f"Max_Std/{model}": best[model].std})
    out["Pixels/Max_Channel_Std"] = max_channel_std(evaluation.images)
    return out


def protocol_text(run) -> str | None:
    """The evaluation protocol of a distillation run as text lines (None for other commands)."""
    describe = getattr(run.config, "evaluation_protocol", None)
    return None if describe is None else "\n".join(f"    {k}: {v}" for k, v in describe().items())
