"""Expert training: SGD on real data, recording the parameters after every epoch (MTT format).

Each expert is trained with plain SGD (MTT defaults: lr 0.01, momentum 0, batch 256, no weight
decay) and its parameters are copied after initialisation and after every epoch (E + 1
checkpoints; copied, because on CPU ``p.detach().cpu()`` is the live parameter itself).
Experts are grouped ``save_interval`` per ``replay_buffer_{n}.pt`` file, numbered after the
files already present; ``replay_buffer_{n}.json`` beside each records the training options
(:mod:`.metadata`).

Crash safety: finished experts of the file being filled are kept in a hidden partial file
(rewritten atomically after every expert) and the run's plan in ``.experts_run.json``; running
the same command again after a crash resumes: finished experts are kept, the interrupted one
restarts from its seed.
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
from ..data import RealDataset, load_dataset
from ..errors import ConfigError, RunDirectoryError
from ..io.atomic import atomic_torch_save, atomic_write_json, ensure_directory, remove_stale_temporaries
from ..io.locks import OutputLock
from ..runtime.distributed import SINGLE_PROCESS, DistContext
from ..runtime.devices import resolve_device
from ..training import test_accuracy, train_epoch
from .buffers import load_replay_buffer, next_buffer_index, save_replay_buffer
from .metadata import read_training_record, write_training_record

log = logging.getLogger(__name__)

MANIFEST = ".experts_run.json"


@dataclass
class ExpertRecord:
    file_index: int
    position: int
    final_train_acc: float
    final_test_acc: float
    test_acc_per_epoch: list[float] = field(default_factory=list)


@dataclass
class ExpertsResult:
    files: list[Path]
    records: list[ExpertRecord]
    resumed: bool = False


def expert_seed(seed: int, file_index: int, position: int) -> int:
    """Seed of one expert: distinct per file and position, stable across resumes."""
    return (seed * 1_000_003 + file_index * 1_009 + position) % (2**63 - 1)


def train_one_expert(config: ExpertConfig, data: RealDataset, seed: int,
                     progress: Callable[[int, float, float], None] | None = None, *,
                     components: Components) -> tuple[list[list[torch.Tensor]], ExpertRecord]:
    """Train one expert (architecture ``config.model`` and augmentation ``config.augmentation``
    of ``components``) from ``seed``; return its trajectory (E+1 checkpoints) and accuracies."""
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
                                   config.batch_train, augment)
        _, test_acc = test_accuracy(model, data.test_images, data.test_labels, batch_size=256)
        test_accs.append(test_acc)
        trajectory.append([p.detach().to("cpu", copy=True) for p in model.parameters()])
        if progress:
            progress(epoch, train_acc, test_acc)
        if config.lr_decay and epoch == config.train_epochs // 2 + 1:  # public buffer.py --decay
            lr *= 0.1
            optimizer = optimizer_for(lr)
    record = ExpertRecord(-1, -1, train_acc, test_accs[-1], test_accs)
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
    if manifest.get("fingerprint") != config.fingerprint():
        raise RunDirectoryError(
            f"{directory} holds an unfinished experts run with different settings ({path}); rerun that "
            f"command to finish it, or delete {path} to discard it"
        )
    return manifest


def train_experts(config: ExpertConfig, data: RealDataset | None = None, *, components: Components,
                  show_progress: bool = True,
                  on_file: Callable[[Path], None] | None = None,
                  on_expert: Callable[[ExpertRecord], None] | None = None,
                  dist: DistContext = SINGLE_PROCESS) -> ExpertsResult:
    """Train ``config.num_experts`` experts and write them as MTT replay buffers.

    Rerunning the same command after a crash resumes the unfinished run (see module doc). The
    output folder is locked for the duration; a run that fails before keeping its first expert
    leaves nothing behind (not even its plan), so the corrected command starts afresh. With the
    context of several processes (``dist``; every rank calls this) the files of the plan are
    dealt to the ranks and rank 0 plans the run.
    """
    config.validate()
    components.check_names(models=[config.model], datasets=[config.dataset], trackers=config.track,
                           expert_augmentations=[config.augmentation])
    classes = components.datasets.get(config.dataset).num_classes
    if config.subset is not None and config.subset < classes:
        raise ConfigError(f"--subset {config.subset} is smaller than the number of classes ({classes}): every class "
                          f"needs at least one image")
    directory = config.output_dir(components.datasets)
    with OutputLock(directory, "dd-harness experts") if dist.is_main else nullcontext():
        plan = _plan_run(config, directory) if dist.is_main else None  # rank 0 alone plans the run
        try:
            plan = dist.broadcast_object(plan)
            return _train_planned(config, data, components, directory, plan, dist, show_progress, on_file, on_expert)
        except BaseException:
            if dist.is_main and not plan.resumed and not plan.keeps_experts(directory):
                (directory / MANIFEST).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class _Plan:
    """The files of one experts run, ``(file index, number of experts)`` each, and whether they
    continue an unfinished run (else this run wrote the plan, ``.experts_run.json``)."""

    files: list[tuple[int, int]]
    resumed: bool

    def keeps_experts(self, directory: Path) -> bool:
        """Whether ``directory`` holds an expert of this plan (in a finished or a partial file)."""
        return any((directory / f"replay_buffer_{index}.pt").exists() or _partial_path(directory, index).exists()
                   for index, _ in self.files)


def _plan_run(config: ExpertConfig, directory: Path) -> _Plan:
    """The unfinished run's plan in ``directory``, or a new one, written there."""
    ensure_directory(directory)
    remove_stale_temporaries(directory)
    manifest = _load_manifest(directory, config)
    resumed = manifest is not None
    if not resumed:
        first = next_buffer_index(directory)
        sizes = [min(config.save_interval, config.num_experts - i)
                 for i in range(0, config.num_experts, config.save_interval)]
        manifest = {"fingerprint": config.fingerprint(), "files": {str(first + i): s for i, s in enumerate(sizes)},
                    "config": asdict(config)}
        atomic_write_json(directory / MANIFEST, manifest)
    return _Plan(sorted((int(k), int(v)) for k, v in manifest["files"].items()), resumed)


def _train_planned(config: ExpertConfig, data: RealDataset | None, components: Components, directory: Path,
                   plan: _Plan, dist: DistContext, show_progress: bool,
                   on_file: Callable[[Path], None] | None,
                   on_expert: Callable[[ExpertRecord], None] | None) -> ExpertsResult:
    offsets = [sum(size for _, size in plan.files[:i]) for i in range(len(plan.files))]

    if data is None:
        data = load_dataset(components.datasets.get(config.dataset), config.data_path, download=config.download, zca=config.zca)
        if config.subset:
            data = data.train_subset(config.subset, seed=config.seed)
    data = data.to(resolve_device(config.device))

    written, records = [], []
    total = sum(size for _, size in plan.files)
    for i, (file_index, size) in dist.shard(plan.files):  # each rank fills its own files: no collisions
        target = directory / f"replay_buffer_{file_index}.pt"
        partial = _partial_path(directory, file_index)
        if target.exists():  # stopped after writing the file: before removing its partial, or writing its record
            partial.unlink(missing_ok=True)
            if read_training_record(target) is None:
                write_training_record(target, config.training_options(), size)
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
                bar.set_postfix(train_acc=f"{train_acc:.3f}", test_acc=f"{test_acc:.3f}")
                bar.update(1)

            trajectory, record = train_one_expert(config, data, expert_seed(config.seed, file_index, position), progress,
                                                components=components)
            bar.close()
            record.file_index, record.position = file_index, position
            records.append(record)
            log.info("expert %d/%d: train acc %.4f, test acc %.4f", ordinal, total,
                     record.final_train_acc, record.final_test_acc)
            if on_expert:
                on_expert(record)
            trajectories.append(trajectory)
            if len(trajectories) < size:
                atomic_torch_save(trajectories, partial)
        save_replay_buffer(trajectories, target)
        write_training_record(target, config.training_options(), size)
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
