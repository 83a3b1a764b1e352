"""PNG figures of a run: the synthetic images as a grid, and loss/accuracy against iteration."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from .io.atomic import atomic_path
from .training import hard_labels


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_image_grid(images: torch.Tensor, labels: torch.Tensor, path: str | Path,
                    class_names: Sequence[str] = (), mean: Sequence[float] = (), std: Sequence[float] = ()) -> None:
    """One row per class; images are un-normalised (if mean/std given) and clipped to 2.5 std."""
    plt = _pyplot()
    images = images.detach().cpu().float()
    hard = hard_labels(labels)
    if mean and std and len(mean) == images.shape[1]:
        images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    centre, spread = images.mean(), images.std().clamp_min(1e-8)
    images = images.clamp(centre - 2.5 * spread, centre + 2.5 * spread)
    images = (images - images.min()) / (images.max() - images.min()).clamp_min(1e-8)
    classes = sorted(set(hard.tolist()))
    per_class = max(int((hard == c).sum()) for c in classes)
    # one row per class; with one image per class, classes run across the rows instead
    cols = min(per_class, 10) if per_class > 1 else min(len(classes), 5)
    rows_per_class = math.ceil(per_class / cols) if per_class > 1 else 0
    rows = len(classes) * rows_per_class if per_class > 1 else math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0 + 0.4, rows * 1.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ci, c in enumerate(classes):
        for j, img in enumerate(images[hard == c]):
            if per_class > 1:
                ax = axes[ci * rows_per_class + j // cols][j % cols]
            else:
                ax = axes[ci // cols][ci % cols]
            pixels = img.permute(1, 2, 0).numpy()
            ax.imshow(pixels[..., 0] if pixels.shape[2] == 1 else pixels, cmap="gray" if pixels.shape[2] == 1 else None)
            if j == 0:
                ax.set_title(class_names[c] if c < len(class_names) else str(c), fontsize=7, loc="left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def save_training_curves(rows: list[dict], path: str | Path, title: str = "") -> None:
    """Matching loss (left axis) and evaluation accuracy with std band (right axis)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    losses = [(r["iteration"], r["loss"]) for r in rows if r.get("loss") is not None]
    if losses:
        xs, ys = zip(*losses)
        ax.plot(xs, ys, color="tab:blue", alpha=0.35, lw=0.8, label="loss")
        window = max(1, len(ys) // 50)
        if window > 1:
            smooth = [sum(ys[max(0, i - window + 1): i + 1]) / len(ys[max(0, i - window + 1): i + 1]) for i in range(len(ys))]
            ax.plot(xs, smooth, color="tab:blue", lw=1.5, label=f"loss (moving mean of {window})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("matching loss", color="tab:blue")
    evals = [(r["iteration"], r["eval_acc_mean"], r.get("eval_acc_std", 0.0)) for r in rows if r.get("eval_acc_mean") is not None]
    if evals:
        ax2 = ax.twinx()
        xs, means, stds = zip(*evals)
        means_pct = [100 * m for m in means]
        ax2.plot(xs, means_pct, "o-", color="tab:red", label="test accuracy")
        ax2.fill_between(xs, [100 * (m - s) for m, s in zip(means, stds)],
                         [100 * (m + s) for m, s in zip(means, stds)], color="tab:red", alpha=0.15)
        ax2.set_ylabel("test accuracy (%)", color="tab:red")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
