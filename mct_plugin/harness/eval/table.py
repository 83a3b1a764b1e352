"""``dd-harness eval``: a run's synthetic set vs a random real subset, per architecture.

The protocol (epochs, batch, augmentation strategy, ...) is the one the run recorded in its
``config.json``; the command line chooses the set (``--set final|best|ITERATION``, or
``--run RUN/best``), the architectures, the number of networks, and may change the training
(``--epoch-eval-train``, ``--dsa/--no-dsa``, ``--eval-precision``) and the step sizes
(``--eval-lr``: the learned alpha by default, a fixed value or one per architecture;
``--baseline-lr``: the random subset's and the full data's, by default the synthetic set's, so
that only the data differ). The report
(``eval.json``, ``eval_table.md``, beside the evaluated set) records the whole protocol with every
step size, flags the networks that ended at chance (:func:`.protocol.ended_at_chance`), and
repeats the accuracies the run recorded while it distilled.

The networks are scored on the split the run was scored on while it distilled (:func:`scored_split`):
a run distilled with ``--validation K`` on its validation split, whose images were held out of
everything that shaped the set, and on the test split only where ``--validation 0`` asks for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import DistillConfig, EvalCommandConfig, EvalSettings, parse_eval_lr
from ..components import Components
from ..data import load_dataset
from ..data.validation import ValidationSplit
from ..errors import ConfigError, RunDirectoryError
from ..io.atomic import atomic_write_json, atomic_write_text, ensure_directory
from ..io.rundir import RunDirectory
from ..runtime.distributed import SINGLE_PROCESS, DistContext
from ..runtime.devices import resolve_device
from ..runtime.precision import resolve_precision
from ..training import hard_labels
from .full_data import FullDataAccuracy, FullDataCache, full_data_label
from .ranking import LabelRobustScores, REFERENCE, label_robust_scores, ranking_markdown
from .recorded import RunSummary
from .saved_set import locate_set, split_run_path
from .protocol import EvalResult, chance_rule, network_seed, random_real_subset, train_and_test

log = logging.getLogger(__name__)


AT_CHANCE_MARK = "(!)"


@dataclass
class EvalRow:
    """One architecture: the accuracy of its networks on the distilled set and on the random real
    subset (None: not evaluated), and the step size each set trained with."""

    model: str
    distilled: EvalResult
    random_subset: EvalResult | None
    lr: float
    random_subset_lr: float


@dataclass
class EvalTable:
    """Accuracy of the distilled set and of a random real subset of the same size per model; a
    network that ended at chance (``classes``; ``hard``: the set's labels are class indices) is
    flagged."""

    run: str
    images: int
    per_class: int
    classes: int
    hard: bool
    rows: list[EvalRow] = field(default_factory=list)
    evaluated: str = "final set"
    protocol: dict = field(default_factory=dict)
    recorded: RunSummary | None = None
    recorded_epochs: int | None = None  # the training epochs of the evaluations during distillation
    recorded_split: str = "test"  # what the evaluations during distillation scored
    ranking: list[LabelRobustScores] = field(default_factory=list)  # DD-Ranking's IOR, HLR, LRS per model
    ranking_notes: list[str] = field(default_factory=list)  # why a DD-Ranking number is missing

    def at_chance(self, result: EvalResult, kind: str) -> int:
        """How many networks of ``result`` (of the set ``kind``) ended at chance."""
        return result.at_chance(self.classes, hard=self.hard or kind != "distilled")

    def chance_notes(self) -> list[str]:
        """``MODEL, SET: k of n networks ended at chance`` for every set with such networks."""
        notes = []
        for row in self.rows:
            for kind, result in (("distilled", row.distilled), ("random subset", row.random_subset)):
                if result is not None and (count := self.at_chance(result, kind)):
                    notes.append(f"{row.model}, {kind}: {count} of {result.networks} networks ended at chance")
        return notes

    def cell(self, result: EvalResult | None, kind: str) -> str:
        if result is None:
            return "-"
        return f"{result} {AT_CHANCE_MARK}" if self.at_chance(result, kind) else str(result)

    def to_markdown(self) -> str:
        lines = [f"Run {self.run}, {self.evaluated}: {self.images} synthetic images ({self.per_class} per class), "
                 f"scored on the {self.protocol.get('split')} split", "",
                 "| model | random real subset (%) | distilled (%) | networks | lr |",
                 "|---|---|---|---|---|"]
        for row in self.rows:
            lr = f"{row.lr:.4g}" if row.random_subset is None or row.random_subset_lr == row.lr \
                else f"{row.random_subset_lr:.4g} / {row.lr:.4g}"
            lines.append(f"| {row.model} | {self.cell(row.random_subset, 'random subset')} | "
                         f"{self.cell(row.distilled, 'distilled')} | {row.distilled.networks} | {lr} |")
        lines += ["", f"lr: the step size of the evaluation networks (--eval-lr {self.protocol.get('eval_lr')}, "
                      f"--baseline-lr {self.protocol.get('baseline_lr')}); two values: random subset / distilled."]
        if any(row.distilled.networks == 1 for row in self.rows):
            lines.append("One network per set: its accuracy alone, no std (n/a).")
        if chance := self.chance_notes():
            lines.append(f"{AT_CHANCE_MARK} {'; '.join(chance)} ({chance_rule(self.classes)}): such a network "
                         "learned nothing and its accuracy says nothing about the set; try another --eval-lr, "
                         "--no-dsa or more --epoch-eval-train.")
        if self.recorded is not None:
            lines += ["", f"Recorded while distilling ({self.recorded_epochs}-epoch evaluations on the "
                          f"{self.recorded_split} split): {self.recorded.describe()}."]
        if self.ranking:
            lines += ["", ranking_markdown(self.ranking)]
        lines += ["", *self.ranking_notes] if self.ranking_notes else []
        return "\n".join(lines)

    def result_dict(self, result: EvalResult | None, kind: str) -> dict | None:
        return None if result is None else {**result.as_dict(), "at_chance": self.at_chance(result, kind)}

    def to_dict(self) -> dict:
        return {"run": self.run, "images": self.images, "per_class": self.per_class, "protocol": self.protocol,
                "rows": [{"model": row.model, "distilled": self.result_dict(row.distilled, "distilled"),
                          "random_subset": self.result_dict(row.random_subset, "random subset"),
                          "lr": {"distilled": row.lr,
                                 "random_subset": row.random_subset_lr if row.random_subset else None}}
                         for row in self.rows],
                "recorded": {**self.recorded.as_dict(), "split": self.recorded_split} if self.recorded is not None
                else None,
                "dd_ranking": {"definition": REFERENCE, "units": "fractions of 1 (x 100: points, %)",
                               "rows": [r.as_dict() for r in self.ranking], "notes": self.ranking_notes}}


def run_protocol(run_config: DistillConfig, options: EvalCommandConfig) -> EvalSettings:
    """The run's evaluation protocol with the command line's number of networks, epochs, seed,
    augmentation and precision."""
    settings = run_config.eval_settings()
    return settings.replace(num_eval=options.num_eval, seed=options.seed,
                            epoch_eval_train=options.epoch_eval_train or settings.epoch_eval_train,
                            dsa=settings.dsa if options.dsa is None else options.dsa,
                            eval_precision=options.eval_precision or settings.eval_precision)


def one_or_each(rates: dict[str, float]) -> float | dict[str, float]:
    """The step size every model shares, or each model's."""
    return next(iter(rates.values())) if len(set(rates.values())) == 1 else dict(rates)


def full_data_subset(data, options: EvalCommandConfig) -> int | None:
    """The images of ``--full-data-subset K``'s class-balanced subset: K // classes per class
    (None: the whole training set).

    :raises ConfigError: K smaller than the number of classes.
    """
    if options.full_data_subset is None:
        return None
    if options.full_data_subset < data.num_classes:
        raise ConfigError(f"--full-data-subset {options.full_data_subset} is smaller than the number of classes "
                          f"of {data.spec.name} ({data.num_classes})")
    return options.full_data_subset // data.num_classes * data.num_classes


def full_data_images(data, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The images the full-data networks train on: all, or ``subset`` class-balanced ones (seed 0).

    :raises ConfigError: a class has fewer than ``subset // classes`` images.
    """
    if subset is None:
        return data.train_images, data.train_labels
    try:
        return random_real_subset(data, subset // data.num_classes, seed=0)
    except ConfigError as exc:
        raise ConfigError(f"--full-data-subset {subset}: {exc}") from None


def scored_split(run_config: DistillConfig, options: EvalCommandConfig, config_file: Path,
                 report: Callable[[str], None]) -> ValidationSplit | None:
    """The split the networks are scored on: the run's (``--validation K --validation-seed S``, or
    the test split), or the test split where ``--validation 0`` asks for it (one line says so for a
    run that has a validation split).

    :raises ConfigError: a validation split other than the run's: the run's experts and initial
        images came from training images that include some of it (the message names ``config_file``)."""
    recorded = ValidationSplit.of(run_config)
    size = run_config.validation if options.validation is None else options.validation
    seed = run_config.validation_seed if options.validation_seed is None else options.validation_seed
    asked = ValidationSplit(size, seed) if size else None
    if asked is not None and asked != recorded:
        held = (f"was distilled with --validation {recorded.size} --validation-seed {recorded.seed}" if recorded
                else "has no validation split (--validation 0)")
        raise ConfigError(f"--validation {size} --validation-seed {seed}: the run of {config_file} {held}, so the "
                          f"training images its experts and initial images came from include some of these; leave "
                          f"--validation out to score the run's split, or pass --validation 0 for the test split")
    if asked is None and recorded is not None:
        report(f"--validation 0: scoring on the test split a run distilled on the {recorded.describe()} split")
    return asked


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
    models = list(options.models) or [run_config.model]
    unknown = [name for name in parse_eval_lr(options.eval_lr) if name is not None and name not in models]
    if unknown:
        raise ConfigError(f"--eval-lr {options.eval_lr} names {', '.join(unknown)}, which is not evaluated here "
                          f"(the models: {', '.join(models)})")
    if options.full_data_accuracy is not None and len(options.models) > 1:
        raise ConfigError(f"--full-data-accuracy gives one accuracy but {len(options.models)} models are evaluated "
                          f"({', '.join(options.models)}): evaluate them one at a time, or measure with --full-data")
    validation = scored_split(run_config, options, run.file("config.json"), report)
    data = load_dataset(spec, options.data_path or run_config.data_path, zca=run_config.zca,
                        validation=validation).to(resolve_device(options.device))
    if tuple(images.shape[1:]) != data.image_shape:
        raise RunDirectoryError(f"{chosen.directory / f'images{chosen.suffix}.pt'} holds {tuple(images.shape[1:])} "
                                f"images but {data.spec.name} has {data.image_shape}")
    per_class = max(1, int(torch.bincount(hard_labels(labels), minlength=data.num_classes).max()))
    protocol = run_protocol(run_config, options)
    protocol = protocol.replace(eval_precision=resolve_precision(protocol.eval_precision, data.device,
                                                                 "--eval-precision", report))
    num_eval = protocol.num_eval
    subset = full_data_subset(data, options)
    teacher = run_config.lr_teacher
    rates = {model: options.eval_lr_of(model, lr, teacher) for model in models}  # of the synthetic set
    real_rates = {model: options.baseline_lr_of(model, lr, teacher) for model in models}  # random subset, full data
    description = {"set": chosen.kind, "iteration": chosen.iteration, "initial_images": chosen.iteration == 0,
                   **protocol.description(models, one_or_each(rates), data.split), "eval_lr": options.eval_lr,
                   "baseline_lr": options.baseline_lr, "batched": options.batched,
                   "random_subset": {"per_class": per_class, "lr": one_or_each(real_rates), "seed": options.seed}
                   if options.baseline else None,
                   "full_data": {"label": full_data_label(subset), "subset": subset, "lr": one_or_each(real_rates)},
                   "at_chance_rule": chance_rule(data.num_classes)}
    table = EvalTable(str(run.path), len(images), per_class, data.num_classes, labels.dim() == 1,
                      evaluated=chosen.describe(), protocol=description, recorded=recorded,
                      recorded_epochs=run_config.epoch_eval_train,
                      recorded_split=run_config.scored_split())
    report(f"evaluating the {chosen.describe()} of {run.path}")
    for model in models:
        report(f"{model}: lr {rates[model]:.4g} on the synthetic set, {real_rates[model]:.4g} on real images "
               f"(--eval-lr {options.eval_lr}, --baseline-lr {options.baseline_lr})")
    sets = {"distilled": (images, labels)}
    if options.baseline:
        sets["random"] = random_real_subset(data, per_class, options.seed)
    if options.full_data:  # DD-Ranking's real-hard accuracy: the training set (or a subset), the random subset's lr
        sets["full_data"] = full_data_images(data, subset)
        report(f"--full-data: the networks also train on {len(sets['full_data'][0])} real training images "
               f"({full_data_label(subset)})")
    rate_of = {"distilled": rates, "random": real_rates, "full_data": real_rates}
    cache = FullDataCache(data, protocol, zca=run_config.zca, subset=subset, root=full_data_cache)
    full_data = known_full_data_accuracies(models, options, cache, real_rates)
    results: dict[tuple[str, str], EvalResult] = {}
    if options.batched and not dist.enabled:
        from .batched import evaluate_set_batched

        for model in models:
            report(f"evaluating {model}: {num_eval} networks x {protocol.epoch_eval_train} epochs (batched)")
            for kind, (x, y) in sets.items():
                results[(model, kind)] = evaluate_set_batched(x, y, rate_of[kind][model], data, model, protocol,
                                                              models=components.models)
    else:
        if options.batched:
            report("--batched is ignored under torchrun: the networks are dealt to the ranks instead")
        # every (model, set, network) is one job; jobs are dealt to the ranks and gathered
        jobs = [(model, kind, i) for model in models for kind in sets for i in range(num_eval)]
        report(f"evaluating {len(models)} model(s) x {len(sets)} set(s) x {num_eval} networks x "
               f"{protocol.epoch_eval_train} epochs" + (f" on {dist.world_size} ranks" if dist.enabled else ""))

        def train(_: int, job: tuple[str, str, int]) -> tuple[float, float]:
            model, kind, i = job
            x, y = sets[kind]
            trained = train_and_test(model, x, y, rate_of[kind][model], data, protocol,
                                     network_seed(options.seed, i), models=components.models)
            report(f"{model}, {kind} set, network {i + 1}/{num_eval}: {100 * trained[0]:.2f}%")
            return trained

        trained = dict(zip(jobs, dist.map_sharded(jobs, train)))
        for model in models:
            for kind in sets:
                results[(model, kind)] = EvalResult.of_networks(model, [trained[(model, kind, i)]
                                                                        for i in range(num_eval)])
    for model in models:
        distilled, random_result = results[(model, "distilled")], results.get((model, "random"))
        table.rows.append(EvalRow(model, distilled, random_result, rates[model], real_rates[model]))
        report(f"{model}: distilled {distilled}%, random subset {random_result if random_result else '-'}%")
    if not dist.is_main:
        return table
    for note in table.chance_notes():
        report(f"warning: {note} ({chance_rule(data.num_classes)}): their accuracy says nothing about the set")
    rank_models(table, results, full_data, real_rates, hard=labels.dim() == 1, cache=cache, seed=options.seed,
                report=report)
    report_json, report_markdown = chosen.report_files()
    if options.report_dir is not None:  # the same names, in the folder asked for
        folder = ensure_directory(Path(options.report_dir).expanduser())
        report_json, report_markdown = folder / report_json.name, folder / report_markdown.name
    atomic_write_json(report_json, table.to_dict())
    atomic_write_text(report_markdown, table.to_markdown() + "\n")
    return table


def known_full_data_accuracies(models: list[str], options: EvalCommandConfig, cache: FullDataCache,
                               rates: dict[str, float]) -> dict[str, FullDataAccuracy | None]:
    """Each model's full-data accuracy before any training: ``--full-data-accuracy``, else the cached
    one at the model's step size in ``rates`` (a damaged cache file fails here, not after the
    training); None for what ``--full-data`` is about to measure or nobody knows."""
    if options.full_data_accuracy is not None:
        return {model: FullDataAccuracy((options.full_data_accuracy / 100.0,), "--full-data-accuracy")
                for model in models}
    return {model: None if options.full_data else cache.read(model, rates[model]) for model in models}


def rank_models(table: EvalTable, results: dict[tuple[str, str], EvalResult],
                full_data: dict[str, FullDataAccuracy | None], rates: dict[str, float], *, hard: bool,
                cache: FullDataCache, seed: int, report: Callable[[str], None]) -> None:
    """Add DD-Ranking's IOR, HLR and LRS of every model to ``table`` (see :mod:`.ranking`); a full-data
    accuracy measured here (``--full-data``, at the model's step size in ``rates``) goes into the
    cache first, and its networks that ended at chance are reported."""
    missing = []
    label = full_data_label(cache.subset)
    for model, known in full_data.items():
        measured = results.get((model, "full_data"))
        full = cache.write(model, rates[model], measured.accuracies, seed) if measured else known
        if measured:
            report(f"{model}: {label} {measured}% (cached in {cache.root})")
            if count := measured.at_chance(table.classes, hard=True):
                report(f"warning: {model}, {label}: {count} of {measured.networks} networks ended at chance "
                       f"({chance_rule(table.classes)})")
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
    if hard and cache.subset is not None and len(missing) < len(full_data):
        table.ranking_notes.append(f"{label}: networks trained on {cache.subset} class-balanced real training images "
                                   f"(of {len(cache.data.train_images)}), not on the whole training set; HLR and LRS "
                                   "above use this approximation of the full-data accuracy")
    for note in table.ranking_notes:
        report(note)
