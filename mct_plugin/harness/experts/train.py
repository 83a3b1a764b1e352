"""Expert training: SGD on real data, recording the parameters after every epoch (MTT format).

Each expert is trained with plain SGD (MTT defaults: lr 0.01, momentum 0, batch 256, no weight
decay) and its parameters are copied after initialisation and after every epoch (E + 1
checkpoints; copied, because on CPU ``p.detach().cpu()`` is the live parameter itself).
Experts are grouped ``save_interval`` per ``replay_buffer_{n}.pt`` file, numbered after the
files already present; ``replay_buffer_{n}.json`` beside each records the training options and
the seed of every expert (:mod:`.metadata`).

A command and the folder it writes to (``train_experts`` decides before training anything):

* an unfinished run (its plan ``.experts_run.json`` is there: a crash, a kill, a full disk)
  continues when its command is run again: finished experts are kept (a hidden partial file holds
  those of the file being filled), the interrupted one restarts from its seed; a command with
  other settings, ``--num-experts`` or ``--add`` is refused;
* every ``replay_buffer_{n}.pt`` with a training record must have been trained with this
  command's settings (:meth:`~..config.ExpertConfig.training_options`), else the command is
  refused naming the file and the settings that differ, as flags;
* without ``--add``, ``--num-experts N`` says how many experts the folder holds when the command
  is done: an empty folder gets N; one that holds exactly N experts of these settings is left
  alone (a finished command run again does nothing, and one log line says so); any other count is
  refused, with the ``--add`` that would train the missing ones, rather than filled up: a changed
  N, or a folder shared by two experiments, would otherwise silently become more experts. A
  buffer without a training record (the public ``buffer.py``'s) is refused too: its settings
  cannot be checked;
* with ``--add``, N more experts go into new files, with seeds different from every recorded one.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..config import ExpertConfig
from ..components import Components
from ..data import RealDataset, ValidationSplit, load_dataset
from ..errors import ConfigError, RunDirectoryError
from ..io.atomic import atomic_torch_save, atomic_write_json, ensure_directory, remove_stale_temporaries
from ..io.locks import OutputLock
from ..io.paths import refuse_a_file
from ..options import flag
from ..runtime.distributed import SINGLE_PROCESS, DistContext
from ..runtime.devices import resolve_device
from ..runtime.precision import resolve_precision
from ..training import test_accuracy, train_epoch
from .buffers import load_replay_buffer, next_buffer_index, replay_buffer_files, save_replay_buffer
from .metadata import metadata_path, read_buffer_record, read_training_record, write_training_record

log = logging.getLogger(__name__)

MANIFEST = ".experts_run.json"


@dataclass
class ExpertRecord:
    """One trained expert's accuracies; ``split`` says what the ``test`` ones were scored on: the
    test split, or the validation split held out by ``--validation`` (``validation (K=..., seed=...)``)."""

    file_index: int
    position: int
    final_train_acc: float
    final_test_acc: float
    test_acc_per_epoch: list[float] = field(default_factory=list)
    split: str = "test"


@dataclass
class ExpertsResult:
    """The files of the run (those this command asks for) and the experts trained now (none when
    the folder already held them)."""

    files: list[Path]
    records: list[ExpertRecord]
    resumed: bool = False


MAX_SEED = 2**63 - 1


def expert_seed(seed: int, file_index: int, position: int) -> int:
    """Seed of one expert: distinct per file and position, stable across resumes."""
    return (seed * 1_000_003 + file_index * 1_009 + position) % MAX_SEED


def train_one_expert(config: ExpertConfig, data: RealDataset, seed: int,
                     progress: Callable[[int, float, float], None] | None = None, *,
                     components: Components) -> tuple[list[list[torch.Tensor]], ExpertRecord]:
    """Train one expert (architecture ``config.model`` and augmentation ``config.augmentation``
    of ``components``, forward passes at ``config.precision``) from ``seed``; return its trajectory
    (E+1 float32 checkpoints) and accuracies (on ``data``'s evaluation images: its test split, or its
    validation split)."""
    torch.manual_seed(seed)
    model = components.models.create(config.model, data.spec.channels, data.num_classes,
                                     data.spec.image_size).to(data.device)
    augment = components.expert_augmentations.get(config.augmentation)(data.spec.image_size)
    lr = config.lr_teacher

    def optimizer_for(rate: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=rate, momentum=config.momentum,
                               weight_decay=config.weight_decay)

    optimizer = optimizer_for(lr)
    trajectory = [[p.detach().to("cpu", copy=True) for p in model.parameters()]]
    test_accs: list[float] = []
    train_acc = 0.0
    for epoch in range(config.train_epochs):
        _, train_acc = train_epoch(model, data.train_images, data.train_labels, optimizer,
                                   config.batch_train, augment, config.precision)
        _, test_acc = test_accuracy(model, data.test_images, data.test_labels, batch_size=256,
                                    precision=config.precision)
        test_accs.append(test_acc)
        trajectory.append([p.detach().to("cpu", copy=True) for p in model.parameters()])
        if progress:
            progress(epoch, train_acc, test_acc)
        if config.lr_decay and epoch == config.train_epochs // 2 + 1:  # public buffer.py --decay
            lr *= 0.1
            optimizer = optimizer_for(lr)
    record = ExpertRecord(-1, -1, train_acc, test_accs[-1], test_accs, data.split)
    return trajectory, record


def _partial_path(directory: Path, file_index: int) -> Path:
    return directory / f".replay_buffer_{file_index}.partial.pt"


def _load_manifest(directory: Path, config: ExpertConfig) -> dict | None:
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirectoryError(f"{path} is unreadable ({exc}); delete it to start a new run") from exc
    recorded = manifest.get("config")
    differences = (_differing_settings(recorded, {**config.training_options(), "num_experts": config.num_experts,
                                                  "add": config.add}, MANIFEST)
                   if isinstance(recorded, dict) else [])
    # a plan that records its settings is compared setting by setting (a setting added since it was
    # written counts as its default, as in the buffers' records); the fingerprint decides for the others
    changed = bool(differences) if isinstance(recorded, dict) else manifest.get("fingerprint") != config.fingerprint()
    if changed:
        named = f": {'; '.join(differences)}" if differences else ""
        raise RunDirectoryError(
            f"{directory} holds an unfinished experts run with different settings ({path}){named}; rerun that "
            f"command to finish it, or delete {path} to discard it"
        )
    return manifest


def _differing_settings(recorded: dict, wanted: dict, source: str) -> list[str]:
    """The settings of ``wanted`` whose value in ``recorded`` (read from the file ``source``) differs,
    each as ``--train-epochs 3 (replay_buffer_0.json) vs 4 (this command)``. A setting that
    ``recorded`` lacks (written before the option existed) counts as the option's default."""
    defaults = asdict(ExpertConfig())
    return [f"{flag(name)} {_shown(recorded.get(name, defaults.get(name)))} ({source}) vs {_shown(value)} (this command)"
            for name, value in wanted.items() if recorded.get(name, defaults.get(name)) != value]


def _shown(value) -> str:
    """An option's value as it reads on a command line: on/off for a switch, unset for None."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "unset" if value is None else str(value)


def train_experts(config: ExpertConfig, data: RealDataset | None = None, *, components: Components,
                  show_progress: bool = True,
                  on_file: Callable[[Path], None] | None = None,
                  on_expert: Callable[[ExpertRecord], None] | None = None,
                  dist: DistContext = SINGLE_PROCESS) -> ExpertsResult:
    """Train ``config.num_experts`` experts and write them as MTT replay buffers; or continue the
    unfinished run of this command; or, where the folder already holds the experts of this
    command, do nothing but say so (see the module doc for ``--num-experts`` and ``--add``
    against the experts a folder holds).

    The output folder is locked for the duration; a run that fails before keeping its first
    expert leaves nothing behind (not even its plan), so the corrected command starts afresh. With
    the context of several processes (``dist``; every rank calls this) the files of the plan are
    dealt to the ranks and rank 0 plans the run.

    ``--precision bf16`` on a device without native bfloat16 trains (and records) fp32, with one
    log line (:func:`~..runtime.precision.resolve_precision`).

    :raises RunDirectoryError: the folder's experts or unfinished run do not fit this command (the
        message names the file and the settings that differ), before anything is written.
    :raises ConfigError: ``data`` was loaded with another validation split than ``config``'s.
    """
    config.validate()
    components.check_names(models=[config.model], datasets=[config.dataset], trackers=config.track,
                           expert_augmentations=[config.augmentation])
    if data is not None:
        data.require_split(ValidationSplit.of(config))
    config = config.replace(precision=resolve_precision(config.precision, resolve_device(config.device), "--precision"))
    classes = components.datasets.get(config.dataset).num_classes
    if config.subset is not None and config.subset < classes:
        raise ConfigError(f"--subset {config.subset} is smaller than the number of classes ({classes}): every class "
                          f"needs at least one image")
    if config.validation:  # before the folder is made
        ValidationSplit.of(config).per_class(classes, config.dataset)
    refuse_a_file(Path(config.buffer_path).expanduser(), "--buffer-path",
                  "experts writes DATASET/MODEL/replay_buffer_N.pt below the folder it is given (e.g. --buffer-path buffers)")
    directory = config.output_dir(components.datasets)
    with OutputLock(directory, "dd-harness experts") if dist.is_main else nullcontext():
        plan = _plan_run(config, directory) if dist.is_main else None  # rank 0 alone plans the run
        try:
            plan = dist.broadcast_object(plan)
            if plan.finished:
                return ExpertsResult(list(plan.finished), [])
            return _train_planned(config, data, components, directory, plan, dist, show_progress, on_file, on_expert)
        except BaseException:
            if dist.is_main and not plan.resumed and not plan.keeps_experts(directory):
                (directory / MANIFEST).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class _Plan:
    """The files of one experts run, ``(file index, seeds of its experts)`` each, and whether they
    continue an unfinished run (else this run wrote the plan, ``.experts_run.json``); or no files
    where the folder already holds the ``finished`` ones this command asks for."""

    files: list[tuple[int, list[int]]]
    resumed: bool
    finished: tuple[Path, ...] = ()

    def keeps_experts(self, directory: Path) -> bool:
        """Whether ``directory`` holds an expert of this plan (in a finished or a partial file)."""
        return any((directory / f"replay_buffer_{index}.pt").exists() or _partial_path(directory, index).exists()
                   for index, _ in self.files)


def _plan_run(config: ExpertConfig, directory: Path) -> _Plan:
    """The unfinished run's plan in ``directory``; or nothing to do (one log line); or a new plan,
    written there. Refuses what the module doc says does not fit the folder."""
    ensure_directory(directory)
    remove_stale_temporaries(directory)
    manifest = _load_manifest(directory, config)
    if manifest is not None:
        return _Plan(sorted((int(index), seeds if isinstance(seeds, list)  # plans before seeds were recorded held sizes
                             else [expert_seed(config.seed, int(index), p) for p in range(seeds)])
                            for index, seeds in manifest["files"].items()), resumed=True)
    recorded, unrecorded = _experts_in(directory, config)
    held = sum(record["experts"] for record in recorded.values())
    wanted = config.num_experts
    if not config.add:
        if unrecorded:
            raise RunDirectoryError(
                f"{unrecorded[0]} has no training record ({metadata_path(unrecorded[0]).name}; a buffer written "
                f"elsewhere, e.g. by the public buffer.py), so its settings cannot be checked against this command; "
                f"pass --add to train --num-experts more experts beside it, or choose another --buffer-path")
        if held == wanted:
            log.info("%s already holds the %d experts of this command (%s): nothing to do (--add trains more)",
                     directory, held, _files_named(list(recorded)))
            return _Plan([], resumed=False, finished=tuple(recorded))
        if held:
            hint = (f"pass --add --num-experts {wanted - held} to train the missing ones" if held < wanted
                    else "distill's --max-files and --max-experts use fewer of them")
            raise RunDirectoryError(f"{directory} holds {held} experts of these settings ({_files_named(list(recorded))}),"
                                    f" not the {wanted} of --num-experts {wanted}; {hint}, or choose another --buffer-path")
    sizes = [min(config.save_interval, wanted - i) for i in range(0, wanted, config.save_interval)]
    taken = {seed for record in recorded.values() for seed in record.get("expert_seeds", [])}
    files = _fresh_seeds(config.seed, next_buffer_index(directory), sizes, taken)
    manifest = {"fingerprint": config.fingerprint(), "files": {str(index): seeds for index, seeds in files},
                "config": asdict(config)}
    atomic_write_json(directory / MANIFEST, manifest)
    return _Plan(files, resumed=False)


def _experts_in(directory: Path, config: ExpertConfig) -> tuple[dict[Path, dict], list[Path]]:
    """The replay buffers already in ``directory``: ``{file: its training record}`` for those with
    a record (:func:`.metadata.read_buffer_record`), and the files without one.

    :raises RunDirectoryError: a record's settings are not ``config``'s; names the file and the
        settings that differ.
    """
    recorded, unrecorded = {}, []
    for path in replay_buffer_files(directory):
        record = read_buffer_record(path)
        if record is None:
            unrecorded.append(path)
            continue
        differences = _differing_settings(record["training"], config.training_options(), metadata_path(path).name)
        if differences:
            raise RunDirectoryError(f"{path} holds experts trained with other settings than this command: "
                                    f"{'; '.join(differences)}; repeat the recorded settings, or choose another "
                                    f"--buffer-path")
        recorded[path] = record
    return recorded, unrecorded


def _fresh_seeds(seed: int, first_index: int, sizes: list[int], taken: set[int]) -> list[tuple[int, list[int]]]:
    """``(file index, seeds)`` of new files numbered from ``first_index`` with ``sizes`` experts:
    each expert's :func:`expert_seed`, moved on past the seeds in ``taken`` (those of the experts
    already in the folder) and those given before."""
    taken = set(taken)
    files = []
    for index, size in enumerate(sizes, start=first_index):
        seeds = []
        for position in range(size):
            candidate = expert_seed(seed, index, position)
            while candidate in taken:
                candidate = (candidate + 1) % MAX_SEED
            taken.add(candidate)
            seeds.append(candidate)
        files.append((index, seeds))
    return files


def _files_named(paths: list[Path]) -> str:
    """``replay_buffer_0.pt``, or ``3 files, replay_buffer_0.pt to replay_buffer_2.pt``."""
    return paths[0].name if len(paths) == 1 else f"{len(paths)} files, {paths[0].name} to {paths[-1].name}"


def _train_planned(config: ExpertConfig, data: RealDataset | None, components: Components, directory: Path,
                   plan: _Plan, dist: DistContext, show_progress: bool,
                   on_file: Callable[[Path], None] | None,
                   on_expert: Callable[[ExpertRecord], None] | None) -> ExpertsResult:
    offsets = [sum(len(seeds) for _, seeds in plan.files[:i]) for i in range(len(plan.files))]

    validation = ValidationSplit.of(config)
    if data is None:
        data = load_dataset(components.datasets.get(config.dataset), config.data_path, download=config.download,
                            zca=config.zca, validation=validation)
        if config.subset:
            data = data.train_subset(config.subset, seed=config.seed)
    data = data.to(resolve_device(config.device))

    scored = "test" if validation is None else "validation"
    written, records = [], []
    total = sum(len(seeds) for _, seeds in plan.files)
    for i, (file_index, seeds) in dist.shard(plan.files):  # each rank fills its own files: no collisions
        size = len(seeds)
        target = directory / f"replay_buffer_{file_index}.pt"
        partial = _partial_path(directory, file_index)
        if target.exists():  # stopped after writing the file: before removing its partial, or writing its record
            partial.unlink(missing_ok=True)
            if read_training_record(target) is None:
                write_training_record(target, config.training_options(), seeds)
            written.append(target)
            continue
        trajectories = load_replay_buffer(partial, mmap=False) if partial.exists() else []
        if trajectories:
            log.info("resuming %s: %d of %d experts already finished", target, len(trajectories), size)
        for position in range(len(trajectories), size):
            ordinal = offsets[i] + position + 1
            bar = tqdm(total=config.train_epochs, desc=f"expert {ordinal}/{total}", unit="epoch",
                       disable=None if show_progress and dist.is_main else True, leave=False)

            def progress(epoch: int, train_acc: float, test_acc: float) -> None:
                bar.set_postfix({"train_acc": f"{train_acc:.3f}", f"{scored}_acc": f"{test_acc:.3f}"})
                bar.update(1)

            trajectory, record = train_one_expert(config, data, seeds[position], progress, components=components)
            bar.close()
            record.file_index, record.position = file_index, position
            records.append(record)
            log.info("expert %d/%d: train acc %.4f, %s acc %.4f", ordinal, total,
                     record.final_train_acc, data.split, record.final_test_acc)
            if on_expert:
                on_expert(record)
            trajectories.append(trajectory)
            if len(trajectories) < size:
                atomic_torch_save(trajectories, partial)
        save_replay_buffer(trajectories, target)
        write_training_record(target, config.training_options(), seeds)
        partial.unlink(missing_ok=True)
        written.append(target)
        if on_file:
            on_file(target)
    gathered = dist.gather_objects((written, records))
    written = sorted((path for part, _ in gathered for path in part), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    records = sorted((r for _, part in gathered for r in part), key=lambda r: (r.file_index, r.position))
    if dist.is_main:
        (directory / MANIFEST).unlink(missing_ok=True)
    return ExpertsResult(written, records, plan.resumed)
