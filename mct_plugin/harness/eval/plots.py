"""PNG figures of a run: the synthetic images as a grid (titled with the set and its iteration), and
the run's curves (loss, accuracy against the random subset, alpha, start epoch) against iteration."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from ..io.atomic import atomic_path
from ..io.metric_names import EVALUATION, RANDOM_SUBSET
from ..training import hard_labels


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_image_grid(images: torch.Tensor, labels: torch.Tensor, path: str | Path,
                    class_names: Sequence[str] = (), mean: Sequence[float] = (), std: Sequence[float] = (),
                    title: str = "") -> None:
    """One row per class; images are un-normalised (if mean/std given) and clipped to 2.5 std;
    ``title`` (which set, which iteration) on top."""
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
    # one canvas and one imshow (a subplot per image made every run's figures cost seconds)
    channels, height, width = images.shape[1:]
    label_space, gap = max(4, height // 3), max(1, height // 14)
    cell_h, cell_w = height + label_space + gap, width + gap
    canvas = torch.ones(rows * cell_h, cols * cell_w, channels)
    names = []
    for ci, c in enumerate(classes):
        for j, img in enumerate(images[hard == c]):
            row, col = (ci * rows_per_class + j // cols, j % cols) if per_class > 1 else (ci // cols, ci % cols)
            top, left = row * cell_h + label_space, col * cell_w
            canvas[top:top + height, left:left + width] = img.permute(1, 2, 0)
            if j == 0:
                names.append((top, left, class_names[c] if c < len(class_names) else str(c)))
    title_space = 0.35 if title else 0.05
    fig_w, fig_h = cols * 1.0 + 0.4, rows * 1.15 + title_space
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.02, 0.02, 0.96, 1 - (title_space + 0.04) / fig_h))
    ax.axis("off")
    pixels = canvas.numpy()
    ax.imshow(pixels[..., 0] if channels == 1 else pixels, cmap="gray" if channels == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    for top, left, name in names:
        ax.text(left, top - 1, name, fontsize=7, va="bottom", ha="left")
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 0.04 / fig_h, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _moving_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


CURVE_PANELS = ("matching loss", "test accuracy (%)", "alpha (student step size)", "start epoch")


def save_training_curves(rows: list[dict], path: str | Path, title: str = "", *, best_iteration: int | None) -> None:
    """curves.png: :func:`training_curves` of the metrics ``rows``."""
    plt = _pyplot()
    fig = training_curves(rows, title, best_iteration=best_iteration)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def training_curves(rows: list[dict], title: str = "", *, best_iteration: int | None):
    """A matplotlib figure of four panels (:data:`CURVE_PANELS`) against the iteration, from the
    metrics rows: the matching loss (and its moving mean); the test accuracy (mean with a +-std
    band, the best evaluation, at ``best_iteration``, marked) and the random real subset's (a dashed
    line with its band); alpha, the student's step size (the value each iteration used); the start
    epoch of each iteration's segment. Warnings (event rows) are dotted vertical lines on every panel.

    :param best_iteration: the iteration of the run's best evaluation (its ``RunSummary``); it is
        one of the evaluated iterations of ``rows`` (None: they hold no evaluation).
    """
    plt = _pyplot()
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if r.get(EVALUATION.mean) is not None]
    baseline = next((r for r in rows if RANDOM_SUBSET.mean in r), None)
    events = [r for r in rows if "event" in r]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    loss_ax, acc_ax, alpha_ax, epoch_ax = axes.flat
    xs = [r["iteration"] for r in steps]
    if steps:
        losses = [r["loss"] for r in steps]
        loss_ax.plot(xs, losses, color="tab:blue", alpha=0.3, lw=0.8, label="per iteration")
        window = max(1, min(50, len(losses) // 10))
        if window > 1:
            loss_ax.plot(xs, _moving_mean(losses, window), color="tab:blue", lw=1.8, label=f"moving mean of {window}")
        loss_ax.legend(fontsize=8, loc="upper right")
        alpha_ax.plot(xs, [r.get("alpha_used", r["alpha"]) for r in steps], color="tab:green", lw=1.5)
        alpha_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        epoch_ax.scatter(xs, [r["start_epoch"] for r in steps], s=6, color="tab:purple", alpha=0.5,
                         label="per iteration")
        if window > 1:
            epoch_ax.plot(xs, _moving_mean([r["start_epoch"] for r in steps], window), color="tab:purple", lw=1.5,
                          label=f"moving mean of {window}")
        epoch_ax.legend(fontsize=8, loc="upper right")
    else:
        for ax in (loss_ax, alpha_ax, epoch_ax):
            ax.text(0.5, 0.5, "no iteration", ha="center", va="center", transform=ax.transAxes, color="gray")
    if baseline is not None:
        mean, std = 100 * baseline[RANDOM_SUBSET.mean], 100 * baseline[RANDOM_SUBSET.std]
        shown = f"{mean:.1f}% (1 network)" if len(baseline.get(RANDOM_SUBSET.accuracies, ())) == 1 \
            else f"{mean:.1f} +- {std:.1f}%"
        acc_ax.axhline(mean, color="gray", ls="--", lw=1.2, label=f"random real subset {shown}")
        acc_ax.axhspan(mean - std, mean + std, color="gray", alpha=0.15)
    if evals:
        its = [r["iteration"] for r in evals]
        means = [100 * r[EVALUATION.mean] for r in evals]
        stds = [100 * r.get(EVALUATION.std, 0.0) for r in evals]
        one = all(len(r.get(EVALUATION.accuracies, ())) == 1 for r in evals)
        acc_ax.plot(its, means, "o-", color="tab:red", ms=4,
                    label="distilled set (1 network)" if one else "distilled set (mean +- std)")
        acc_ax.fill_between(its, [m - d for m, d in zip(means, stds)], [m + d for m, d in zip(means, stds)],
                            color="tab:red", alpha=0.18)
        best = its.index(best_iteration)
        acc_ax.plot([its[best]], [means[best]], "*", color="black", ms=13,
                    label=f"best set {means[best]:.1f}% (iteration {its[best]})")
        final = "final set = best set" if best == len(means) - 1 else f"final set {means[-1]:.1f}%"
        acc_ax.annotate(final, (its[-1], means[-1]), textcoords="offset points", xytext=(-10, -16), ha="right",
                        fontsize=8)
    else:
        acc_ax.text(0.5, 0.5, "no evaluation (--eval-it 0)", ha="center", va="center", transform=acc_ax.transAxes,
                    color="gray")
    if evals or baseline is not None:
        acc_ax.legend(fontsize=8, loc="lower right")
    for ax, name in zip(axes.flat, CURVE_PANELS):
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        for event in events:
            ax.axvline(event["iteration"], color="tab:orange", ls=":", lw=1.2)
    for event in events:
        loss_ax.annotate(event["event"].replace("_", " "), (event["iteration"], 1), xycoords=("data", "axes fraction"),
                         xytext=(3, -12), textcoords="offset points", fontsize=7, color="tab:orange")
    for ax in (alpha_ax, epoch_ax):
        ax.set_xlabel("iteration")
    if title:
        fig.suptitle(title)
    # a fixed layout: tight_layout measured every text of the figure, most of its cost
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.9 if title else 0.95, hspace=0.22, wspace=0.2)
    return fig
