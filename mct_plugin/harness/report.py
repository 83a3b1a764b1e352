"""``dd-harness eval``: a run's synthetic set vs a random real subset, per architecture."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .atomic import atomic_write_json, atomic_write_text
from .data import load_dataset
from .devices import resolve_device
from .errors import RunDirectoryError
from . import distributed
from .evaluate import EvalConfig, EvalResult, network_seed, random_real_subset, train_and_test
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
                 baseline: bool = True, batched: bool = False, device: str = "auto",
                 report: Callable[[str], None] = log.info) -> EvalTable:
    """Evaluate the synthetic set of ``run_dir``; write ``eval.json`` and ``eval_table.md`` there."""
    run = RunDirectory(run_dir)
    config = run.read_config()
    images, labels, lr = load_synthetic(run.path)
    data = load_dataset(config.get("dataset", "FashionMNIST"), data_path or config.get("data_path"),
                        zca=bool(config.get("zca", False))).to(resolve_device(device))
    if tuple(images.shape[1:]) != data.image_shape:
        raise RunDirectoryError(f"{run.path / 'images.pt'} holds {tuple(images.shape[1:])} images but "
                                f"{data.spec.name} has {data.image_shape}")
    hard = labels.argmax(1) if labels.dim() == 2 else labels
    per_class = max(1, int(torch.bincount(hard, minlength=data.num_classes).max()))
    eval_config = EvalConfig(num_eval=num_eval, epoch_eval_train=epoch_eval_train or int(config.get("epoch_eval_train", 1000)),
                             batch_train=int(config.get("batch_train", 256)), dsa=bool(config.get("dsa", True)),
                             seed=seed)
    table = EvalTable(str(run.path), len(images), per_class)
    sets = {"distilled": (images, labels, lr)}
    if baseline:
        real_x, real_y = random_real_subset(data, per_class, seed)
        sets["random"] = (real_x, real_y, float(config.get("lr_teacher", 0.01)))
    models = models or [config.get("model", "ConvNet")]
    ctx = distributed.context()
    results: dict[tuple[str, str], EvalResult] = {}
    if batched and not ctx.enabled:
        from .batched_eval import evaluate_set_batched

        for model in models:
            report(f"evaluating {model}: {num_eval} networks x {eval_config.epoch_eval_train} epochs (batched)")
            for kind, (x, y, rate) in sets.items():
                results[(model, kind)] = evaluate_set_batched(x, y, rate, data, model, eval_config)
    else:
        if batched:
            report("--batched is ignored under torchrun: the networks are dealt to the ranks instead")
        # every (model, set, network) is one job; jobs are dealt to the ranks and gathered
        jobs = [(model, kind, i) for model in models for kind in sets for i in range(num_eval)]
        report(f"evaluating {len(models)} model(s) x {len(sets)} set(s) x {num_eval} networks x "
               f"{eval_config.epoch_eval_train} epochs" + (f" on {ctx.world_size} ranks" if ctx.enabled else ""))
        mine = {}
        for _, (model, kind, i) in ctx.shard(jobs):
            x, y, rate = sets[kind]
            mine[(model, kind, i)] = train_and_test(model, x, y, rate, data, eval_config, network_seed(seed, i))
            report(f"{model}, {kind} set, network {i + 1}/{num_eval}: {100 * mine[(model, kind, i)]:.2f}%")
        merged = {key: acc for part in distributed.gather_objects(mine) for key, acc in part.items()}
        for model in models:
            for kind in sets:
                results[(model, kind)] = EvalResult(model, [merged[(model, kind, i)] for i in range(num_eval)])
    for model in models:
        distilled, random_result = results[(model, "distilled")], results.get((model, "random"))
        table.rows.append((model, distilled, random_result))
        report(f"{model}: distilled {distilled}%, random subset {random_result if random_result else '-'}%")
    if not ctx.is_main:
        return table
    atomic_write_json(run.path / "eval.json", table.to_dict())
    atomic_write_text(run.path / "eval_table.md", table.to_markdown() + "\n")
    return table
