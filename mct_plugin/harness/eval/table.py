"""``dd-harness eval``: a run's synthetic set vs a random real subset, per architecture.

The protocol (epochs, batch, augmentation strategy, ...) is the one the run recorded in its
``config.json``; the command line only chooses the set (``--set final|best|ITERATION``, or
``--run RUN/best``), the architectures, the number of networks, and may shorten the training
(``--epoch-eval-train``). The report (``eval.json``, ``eval_table.md``, beside the evaluated set)
records the whole protocol and repeats the accuracies the run recorded while it distilled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import DistillConfig, EvalCommandConfig, EvalSettings
from ..components import Components
from ..data import load_dataset
from ..errors import ConfigError, RunDirectoryError
from ..io.atomic import atomic_write_json, atomic_write_text
from ..io.rundir import RunDirectory
from ..runtime.distributed import SINGLE_PROCESS, DistContext
from ..runtime.devices import resolve_device
from ..training import hard_labels
from .full_data import FullDataAccuracy, FullDataCache
from .ranking import LabelRobustScores, REFERENCE, label_robust_scores, ranking_markdown
from .recorded import RunSummary
from .saved_set import locate_set, split_run_path
from .protocol import EvalResult, network_seed, random_real_subset, train_and_test

log = logging.getLogger(__name__)


@dataclass
class EvalTable:
    """Accuracy of the distilled set and of a random real subset of the same size per model."""

    run: str
    images: int
    per_class: int
    rows: list[tuple[str, EvalResult, EvalResult | None]] = field(default_factory=list)
    evaluated: str = "final set"
    protocol: dict = field(default_factory=dict)
    recorded: RunSummary | None = None
    recorded_epochs: int | None = None  # the training epochs of the evaluations during distillation
    ranking: list[LabelRobustScores] = field(default_factory=list)  # DD-Ranking's IOR, HLR, LRS per model
    ranking_notes: list[str] = field(default_factory=list)  # why a DD-Ranking number is missing

    def to_markdown(self) -> str:
        lines = [f"Run {self.run}, {self.evaluated}: {self.images} synthetic images ({self.per_class} per class)", "",
                 "| model | random real subset (%) | distilled (%) | networks |",
                 "|---|---|---|---|"]
        for model, distilled, baseline in self.rows:
            lines.append(f"| {model} | {baseline if baseline else '-'} | {distilled} | {len(distilled.accuracies)} |")
        if self.recorded is not None:
            lines += ["", f"Recorded while distilling ({self.recorded_epochs}-epoch evaluations): "
                          f"{self.recorded.describe()}."]
        if self.ranking:
            lines += ["", ranking_markdown(self.ranking)]
        lines += ["", *self.ranking_notes] if self.ranking_notes else []
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"run": self.run, "images": self.images, "per_class": self.per_class, "protocol": self.protocol,
                "rows": [{"model": m, "distilled": d.as_dict(), "random_subset": b.as_dict() if b else None}
                         for m, d, b in self.rows],
                "recorded": self.recorded.as_dict() if self.recorded is not None else None,
                "dd_ranking": {"definition": REFERENCE, "units": "fractions of 1 (x 100: points, %)",
                               "rows": [r.as_dict() for r in self.ranking], "notes": self.ranking_notes}}


def run_protocol(run_config: DistillConfig, options: EvalCommandConfig) -> EvalSettings:
    """The run's evaluation protocol with the command line's number of networks, epochs and seed."""
    settings = run_config.eval_settings()
    return settings.replace(num_eval=options.num_eval, seed=options.seed,
                            epoch_eval_train=options.epoch_eval_train or settings.epoch_eval_train)


def chosen_set(run_dir: Path, options: EvalCommandConfig) -> tuple[Path, str | None]:
    """The run directory and the set to evaluate: ``--set``, or the one ``--run`` points at
    (``RUN/best``); both at once must agree."""
    run_path, implied = split_run_path(run_dir)
    if implied is not None and options.set not in (None, implied):
        raise ConfigError(f"--run {run_dir} is the {implied} set of {run_path}, --set {options.set} another; "
                          f"give --run {run_path} --set {options.set}")
    return run_path, options.set or implied


def evaluate_run(run_dir: Path, options: EvalCommandConfig = EvalCommandConfig(), *, components: Components,
                 report: Callable[[str], None] = log.info, full_data_cache: Path | None = None,
                 dist: DistContext = SINGLE_PROCESS) -> EvalTable:
    """Evaluate a synthetic set of the run in ``run_dir`` (``options.set``; ``run_dir`` may be
    ``RUN/best``), its dataset and models from ``components``; write ``eval.json`` and
    ``eval_table.md`` beside that set (:meth:`~.saved_set.SavedSet.report_files`). DD-Ranking's IOR,
    HLR and LRS (:mod:`.ranking`) join the table; the full-data accuracy they need is read from, or
    with ``--full-data`` measured into, ``full_data_cache`` (default ``cache_dir()/full_data``).
    With the context of several processes (``dist``) the networks are dealt to the ranks, and
    rank 0 alone writes the report."""
    options.validate()
    run_path, which = chosen_set(run_dir, options)
    run = RunDirectory(run_path)
    saved = run.read_config()
    if not isinstance(saved, dict):
        raise RunDirectoryError(f"{run.file('config.json')} does not hold a mapping of options")
    run_config = DistillConfig.from_dict(saved, where=str(run.file("config.json")))
    recorded = RunSummary.from_rows(run.read_metrics(), run_config.model, run_config.iterations)
    chosen = locate_set(run.path, which, run_config.iterations, recorded.best.iteration if recorded.best else None)
    spec = components.datasets.get(run_config.dataset)
    images, labels, lr = chosen.load(spec.num_classes)
    for model in (*options.models, run_config.model):
        components.models.factory(model)
    if options.full_data_accuracy is not None and len(options.models) > 1:
        raise ConfigError(f"--full-data-accuracy gives one accuracy but {len(options.models)} models are evaluated "
                          f"({', '.join(options.models)}): evaluate them one at a time, or measure with --full-data")
    data = load_dataset(spec, options.data_path or run_config.data_path,
                        zca=run_config.zca).to(resolve_device(options.device))
    if tuple(images.shape[1:]) != data.image_shape:
        raise RunDirectoryError(f"{chosen.directory / f'images{chosen.suffix}.pt'} holds {tuple(images.shape[1:])} "
                                f"images but {data.spec.name} has {data.image_shape}")
    per_class = max(1, int(torch.bincount(hard_labels(labels), minlength=data.num_classes).max()))
    protocol = run_protocol(run_config, options)
    num_eval = protocol.num_eval
    models = list(options.models) or [run_config.model]
    description = {"set": chosen.kind, "iteration": chosen.iteration, **protocol.description(models, lr),
                   "batched": options.batched,
                   "random_subset": {"per_class": per_class, "lr": run_config.lr_teacher, "seed": options.seed}
                   if options.baseline else None}
    table = EvalTable(str(run.path), len(images), per_class, evaluated=chosen.describe(), protocol=description,
                      recorded=recorded, recorded_epochs=run_config.epoch_eval_train)
    report(f"evaluating the {chosen.describe()} of {run.path}")
    sets = {"distilled": (images, labels, lr)}
    if options.baseline:
        real_x, real_y = random_real_subset(data, per_class, options.seed)
        sets["random"] = (real_x, real_y, run_config.lr_teacher)
    if options.full_data:  # DD-Ranking's real-hard accuracy: the whole training set, the random subset's lr
        report(f"--full-data: the networks also train on all {len(data.train_images)} real training images")
        sets["full_data"] = (data.train_images, data.train_labels, run_config.lr_teacher)
    cache = FullDataCache(data, protocol, run_config.lr_teacher, zca=run_config.zca, root=full_data_cache)
    full_data = known_full_data_accuracies(models, options, cache)
    results: dict[tuple[str, str], EvalResult] = {}
    if options.batched and not dist.enabled:
        from .batched import evaluate_set_batched

        for model in models:
            report(f"evaluating {model}: {num_eval} networks x {protocol.epoch_eval_train} epochs (batched)")
            for kind, (x, y, rate) in sets.items():
                results[(model, kind)] = evaluate_set_batched(x, y, rate, data, model, protocol,
                                                                 models=components.models)
    else:
        if options.batched:
            report("--batched is ignored under torchrun: the networks are dealt to the ranks instead")
        # every (model, set, network) is one job; jobs are dealt to the ranks and gathered
        jobs = [(model, kind, i) for model in models for kind in sets for i in range(num_eval)]
        report(f"evaluating {len(models)} model(s) x {len(sets)} set(s) x {num_eval} networks x "
               f"{protocol.epoch_eval_train} epochs" + (f" on {dist.world_size} ranks" if dist.enabled else ""))

        def train(_: int, job: tuple[str, str, int]) -> float:
            model, kind, i = job
            x, y, rate = sets[kind]
            accuracy = train_and_test(model, x, y, rate, data, protocol, network_seed(options.seed, i),
                                      models=components.models)
            report(f"{model}, {kind} set, network {i + 1}/{num_eval}: {100 * accuracy:.2f}%")
            return accuracy

        accuracies = dict(zip(jobs, dist.map_sharded(jobs, train)))
        for model in models:
            for kind in sets:
                results[(model, kind)] = EvalResult(model, [accuracies[(model, kind, i)] for i in range(num_eval)])
    for model in models:
        distilled, random_result = results[(model, "distilled")], results.get((model, "random"))
        table.rows.append((model, distilled, random_result))
        report(f"{model}: distilled {distilled}%, random subset {random_result if random_result else '-'}%")
    if not dist.is_main:
        return table
    rank_models(table, results, full_data, hard=labels.dim() == 1, cache=cache, seed=options.seed, report=report)
    report_json, report_markdown = chosen.report_files()
    atomic_write_json(report_json, table.to_dict())
    atomic_write_text(report_markdown, table.to_markdown() + "\n")
    return table


def known_full_data_accuracies(models: list[str], options: EvalCommandConfig,
                               cache: FullDataCache) -> dict[str, FullDataAccuracy | None]:
    """Each model's full-data accuracy before any training: ``--full-data-accuracy``, else the cached
    one (a damaged cache file fails here, not after the training); None for what ``--full-data``
    is about to measure or nobody knows."""
    if options.full_data_accuracy is not None:
        return {model: FullDataAccuracy((options.full_data_accuracy / 100.0,), "--full-data-accuracy")
                for model in models}
    return {model: None if options.full_data else cache.read(model) for model in models}


def rank_models(table: EvalTable, results: dict[tuple[str, str], EvalResult],
                full_data: dict[str, FullDataAccuracy | None], *, hard: bool, cache: FullDataCache, seed: int,
                report: Callable[[str], None]) -> None:
    """Add DD-Ranking's IOR, HLR and LRS of every model to ``table`` (see :mod:`.ranking`); a full-data
    accuracy measured here (``--full-data``) goes into the cache first."""
    missing = []
    for model, known in full_data.items():
        measured = results.get((model, "full_data"))
        full = cache.write(model, measured.accuracies, seed) if measured else known
        if measured:
            report(f"{model}: whole training set {measured}% (cached in {cache.root})")
        random_result = results.get((model, "random"))
        if hard:
            table.ranking.append(label_robust_scores(
                model, results[(model, "distilled")].accuracies, random_result.accuracies if random_result else None,
                full.mean if full else None, full_data_source=full.source if full else None))
            if full is None:
                missing.append(model)
    if not hard:
        table.ranking_notes.append("DD-Ranking's IOR, HLR and LRS are not computed: the synthetic set has soft labels; "
                                   "their IOR compares it with a random subset labelled by the same teacher, and "
                                   "their HLR needs its accuracy with hard labels")
    if missing:
        table.ranking_notes.append(f"HLR and LRS of {', '.join(missing)} need the accuracy of networks trained on the "
                                   "whole real training set under this protocol: pass --full-data-accuracy PCT, or "
                                   f"run this eval once with --full-data (cached in {cache.root})")
    for note in table.ranking_notes:
        report(note)
