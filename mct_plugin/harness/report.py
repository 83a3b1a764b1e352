"""``dd-harness eval``: a run's synthetic set vs a random real subset, per architecture."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .atomic import atomic_write_json, atomic_write_text
from .data import load_dataset
from .errors import RunDirectoryError
from .evaluate import EvalConfig, EvalResult, evaluate_set, random_real_subset
from .rundir import RunDirectory
from .synthetic import load_synthetic

log = logging.getLogger(__name__)


@dataclass
class EvalTable:
    """Accuracy of the distilled set and of a random real subset of the same size per model."""

    run: str
    images: int
    per_class: int
    rows: list[tuple[str, EvalResult, EvalResult | None]] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"Run {self.run}: {self.images} synthetic images ({self.per_class} per class)", "",
                 "| model | random real subset (%) | distilled (%) | networks |",
                 "|---|---|---|---|"]
        for model, distilled, baseline in self.rows:
            lines.append(f"| {model} | {baseline if baseline else '-'} | {distilled} | {len(distilled.accuracies)} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"run": self.run, "images": self.images, "per_class": self.per_class,
                "rows": [{"model": m, "distilled": d.as_dict(), "random_subset": b.as_dict() if b else None}
                         for m, d, b in self.rows]}


def evaluate_run(run_dir: Path, *, models: list[str] | None = None, num_eval: int = 5,
                 epoch_eval_train: int | None = None, seed: int = 0, data_path: str | None = None,
                 baseline: bool = True, batched: bool = False,
                 report: Callable[[str], None] = log.info) -> EvalTable:
    """Evaluate the synthetic set of ``run_dir``; write ``eval.json`` and ``eval_table.md`` there."""
    run = RunDirectory(run_dir)
    config = run.read_config()
    images, labels, lr = load_synthetic(run.path)
    data = load_dataset(config.get("dataset", "FashionMNIST"), data_path or config.get("data_path"),
                        zca=bool(config.get("zca", False)))
    if tuple(images.shape[1:]) != data.image_shape:
        raise RunDirectoryError(f"{run.path / 'images.pt'} holds {tuple(images.shape[1:])} images but "
                                f"{data.spec.name} has {data.image_shape}")
    hard = labels.argmax(1) if labels.dim() == 2 else labels
    per_class = max(1, int(torch.bincount(hard, minlength=data.num_classes).max()))
    eval_config = EvalConfig(num_eval=num_eval, epoch_eval_train=epoch_eval_train or int(config.get("epoch_eval_train", 1000)),
                             batch_train=int(config.get("batch_train", 256)), dsa=bool(config.get("dsa", True)),
                             seed=seed)
    evaluate = evaluate_set
    if batched:
        from .batched_eval import evaluate_set_batched as evaluate
    table = EvalTable(str(run.path), len(images), per_class)
    real_x, real_y = random_real_subset(data, per_class, seed) if baseline else (None, None)
    baseline_lr = float(config.get("lr_teacher", 0.01))
    for model in models or [config.get("model", "ConvNet")]:
        report(f"evaluating {model}: {num_eval} networks x {eval_config.epoch_eval_train} epochs")
        distilled = evaluate(images, labels, lr, data, model, eval_config)
        random_result = evaluate(real_x, real_y, baseline_lr, data, model, eval_config) if baseline else None
        table.rows.append((model, distilled, random_result))
        report(f"{model}: distilled {distilled}%, random subset {random_result if random_result else '-'}%")
    atomic_write_json(run.path / "eval.json", table.to_dict())
    atomic_write_text(run.path / "eval_table.md", table.to_markdown() + "\n")
    return table
