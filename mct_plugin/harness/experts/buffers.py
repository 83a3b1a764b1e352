"""MTT replay buffers: the expert-trajectory file format, read and written bit-compatibly.

Layout (public MTT ``buffer.py``): ``{root}/{dataset}[_NO_ZCA]/{model}/replay_buffer_{n}.pt``,
each a ``torch.save`` of ``list[trajectory]``; ``trajectory = list[checkpoint]`` (E+1 entries:
after initialisation and after every epoch); ``checkpoint = list[Tensor]`` - CPU float32
tensors in ``model.parameters()`` order. ``_NO_ZCA`` is appended only for CIFAR-10/100 trained
without ZCA, exactly as the public code does.

Buffers from strangers are untrusted pickles: they are loaded with ``weights_only=True`` (a
payload that would import arbitrary objects is refused, never executed) and validated
(nesting, dtype, finiteness, shapes against the model) with errors naming file, expert,
checkpoint and parameter.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Callable, Sequence

import torch

from .._registry import ModelRegistry, Registry
from ..errors import BufferFormatError, DataNotFoundError
from ..io.atomic import atomic_torch_save
from ..io.paths import refuse_a_file
from ..io.untrusted import torch_load_untrusted

Checkpoint = list  # list[torch.Tensor]
Trajectory = list  # list[Checkpoint]

REPLAY_PATTERN = re.compile(r"^replay_buffer_(\d+)\.pt$")


def check_buffer_folder(directory: Path, dataset: str, model: str, zca: bool, datasets: Registry,
                        models: ModelRegistry) -> None:
    """Refuse experts whose folder names say they belong to another run.

    In the public layout ``.../DATASET[_NO_ZCA]/MODEL`` the folder names are the only record of
    which model and dataset an MTT buffer was trained for (the format stores no metadata), and a
    buffer of a model with the same parameter shapes (``ConvNet`` vs ``ConvNetMP``) or of a
    dataset with the same image shape would otherwise load silently. Folder names that are not
    registered model or dataset names (in ``models`` and ``datasets``) are not checked.
    """
    folder_model, folder_data = directory.name, directory.parent.name
    if folder_model in models.models and folder_model != model:
        raise BufferFormatError(f"{directory} holds experts of {folder_model} (its folder name) but --model is {model}; "
                                f"pass --model {folder_model}, or move the buffers out of a folder named after "
                                f"another model")
    dataset_name = folder_data.removesuffix("_NO_ZCA")
    if folder_model in models.models and dataset_name in datasets:
        if dataset_name != dataset:
            raise BufferFormatError(f"{directory} holds experts trained on {dataset_name} (its folder name) but "
                                    f"--dataset is {dataset}")
        expected = datasets.get(dataset).buffer_subdir(model, zca).parent.name
        if folder_data != expected:
            raise BufferFormatError(f"{directory} holds experts trained {'without' if zca else 'with'} ZCA (folder "
                                    f"{folder_data}) but the run {'uses' if zca else 'does not use'} --zca")


def replay_buffer_files(directory: str | Path) -> list[Path]:
    """The ``replay_buffer_{n}.pt`` files in ``directory``, ordered by ``n``.

    :raises BufferFormatError: the folder cannot be listed, or a ``replay_buffer_{n}.pt`` is a
        symbolic link that cannot be followed (a loop, or a missing target) - an expert that
        would otherwise be skipped without a word.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        raise BufferFormatError(f"cannot list {directory}: {exc.strerror or exc}") from exc
    found = []
    for path in entries:
        match = REPLAY_PATTERN.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
        elif match and path.is_symlink():
            check_link_target(path)
    return [path for _, path in sorted(found)]


def check_link_target(path: Path) -> None:
    """Raise :class:`BufferFormatError` if the symbolic link ``path`` cannot be followed."""
    try:
        path.stat()
    except OSError as exc:
        what = {errno.ELOOP: "a symbolic link loop", errno.ENOENT: "a symbolic link to a missing file"}
        raise BufferFormatError(f"{path} is {what.get(exc.errno, 'an unreadable symbolic link')} "
                                f"({exc.strerror}); remove it or point it at a buffer file") from exc


def quick_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's size, first and last MiB: tells whether an expert file was replaced
    without reading gigabytes of buffers (a change in the middle alone goes unnoticed)."""
    import hashlib

    path = Path(path)
    digest = hashlib.sha256()
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            digest.update(str(size).encode())
            digest.update(handle.read(chunk))
            if size > chunk:
                handle.seek(max(chunk, size - chunk))
                digest.update(handle.read(chunk))
    except OSError as exc:
        raise BufferFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def next_buffer_index(directory: str | Path) -> int:
    """The number for a new ``replay_buffer_{n}.pt``: one past the largest existing ``n``."""
    files = replay_buffer_files(directory)
    return int(REPLAY_PATTERN.match(files[-1].name).group(1)) + 1 if files else 0


def resolve_buffer_dir(path: str | Path, subdir: str | Path,
                       has_buffers: Callable[[Path], bool] = lambda d: bool(replay_buffer_files(d))) -> Path:
    """The folder holding the buffers: ``path`` itself, or the public layout ``path / subdir`` below it
    (``subdir``: ``DatasetSpec.buffer_subdir(model, zca)``).

    :raises ConfigError: ``path`` is a file (e.g. ``replay_buffer_0.pt``); the message names its folder.
    :raises DataNotFoundError: neither folder holds buffers; both searched paths are named, and the
        ``DATASET/MODEL`` folders below ``path`` that do hold buffers (another ``--model``,
        ``--dataset`` or ``--zca``).
    """
    path = Path(path).expanduser()
    refuse_a_file(path, "--buffer-path", f"pass the folder that holds it ({path.parent}): every expert file there "
                                         f"is read (--max-files N reads the first N)")
    candidates = [path, path / subdir]
    for candidate in candidates:
        if candidate.is_dir() and has_buffers(candidate):
            return candidate
    others = sorted(str(folder.relative_to(path)) for folder in [*path.glob("*"), *path.glob("*/*")]
                    if folder.is_dir() and has_buffers(folder))
    shown = ", ".join(others[:8]) + (f" and {len(others) - 8} more" if len(others) > 8 else "")
    found = (f"; {path} holds buffers in other model folders: {shown} (choose one with --dataset, --model and --zca, "
             f"or point --buffer-path at it)" if others else "")
    raise DataNotFoundError(
        "no expert buffers found (searched " + " and ".join(str(c) for c in candidates) + ")" + (found or
        "; train some with 'dd-harness experts' or point --buffer-path at a folder of replay_buffer_*.pt")
    )


# consecutive points closer than this (relative to the parameter norm) leave a segment between
# them without direction: MTT's normalised loss divides by ~0 and the images explode
MIN_RELATIVE_STEP = 1e-6


def check_distinct_points(points: Sequence[Sequence[torch.Tensor]], where: str, what: str = "checkpoint",
                          epochs: Sequence[int] | None = None) -> None:
    """Raise :class:`BufferFormatError` if two consecutive points (checkpoints or waypoints) are
    identical, or differ by less than :data:`MIN_RELATIVE_STEP` of the parameter norm."""
    labels = list(epochs) if epochs is not None else list(range(len(points)))
    steps = []
    for k in range(len(points) - 1):
        change = sum(float(torch.sum((b.double() - a.double()) ** 2)) for a, b in zip(points[k], points[k + 1]))
        size = sum(float(torch.sum(a.double() ** 2)) for a in points[k])
        steps.append((change ** 0.5, size ** 0.5))
    if what == "checkpoint" and len(points) > 2 and all(change == 0 for change, _ in steps):
        raise BufferFormatError(
            f"{where}: all {len(points)} checkpoints are identical - a broken recording (the public "
            f"buffer.py run on CPU stores references to the final weights); regenerate the buffer")
    for k, (change, size) in enumerate(steps):
        if change <= MIN_RELATIVE_STEP * max(size, 1e-30):
            kind = "identical" if change == 0 else f"almost identical (|change| {change:.3g} for |parameters| {size:.3g})"
            raise BufferFormatError(
                f"{where}: {what}s {labels[k]} and {labels[k + 1]} are {kind}, so a segment between them has no "
                f"direction; regenerate the trajectory or remove this expert")


def validate_trajectory(trajectory, where: str, shapes: Sequence[tuple] | None = None,
                        names: Sequence[str] | None = None, what: str = "checkpoint") -> list[list[torch.Tensor]]:
    """Check one trajectory's nesting, dtypes, layout, finiteness and shapes, and that consecutive
    points differ (:func:`check_distinct_points`); return it as float32 lists."""
    if not isinstance(trajectory, (list, tuple)):
        raise BufferFormatError(f"{where} is a {type(trajectory).__name__}, expected a list of checkpoints")
    if len(trajectory) < 2:
        raise BufferFormatError(f"{where} has {len(trajectory)} checkpoint(s); at least 2 are needed")
    reference = shapes
    checked = []
    for k, checkpoint in enumerate(trajectory):
        here = f"{where}, {what} {k}"
        if not isinstance(checkpoint, (list, tuple)) or not checkpoint:
            raise BufferFormatError(f"{here} is a {type(checkpoint).__name__}, expected a list of tensors")
        if reference is None:
            reference = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in checkpoint]
        if len(checkpoint) != len(reference):
            raise BufferFormatError(f"{here} has {len(checkpoint)} tensors, expected {len(reference)}")
        tensors = []
        for i, tensor in enumerate(checkpoint):
            label = f"{here}, parameter {i}" + (f" ({names[i]})" if names else "")
            if not isinstance(tensor, torch.Tensor):
                raise BufferFormatError(f"{label} is a {type(tensor).__name__}, expected a tensor")
            if tensor.layout != torch.strided:
                raise BufferFormatError(f"{label} is a {str(tensor.layout).replace('torch.', '')} tensor, "
                                        f"expected a dense tensor")
            if not tensor.is_floating_point():
                raise BufferFormatError(f"{label} has dtype {tensor.dtype}, expected a floating-point tensor")
            if tuple(tensor.shape) != tuple(reference[i]):
                raise BufferFormatError(f"{label} has shape {tuple(tensor.shape)}, expected {tuple(reference[i])}")
            if not torch.isfinite(tensor).all():
                raise BufferFormatError(f"{label} contains NaN or Inf")
            tensors.append(tensor if tensor.dtype == torch.float32 else tensor.float())
        checked.append(tensors)
    check_distinct_points(checked, where, what)
    return checked


def load_replay_buffer(path: str | Path, shapes: Sequence[tuple] | None = None,
                       names: Sequence[str] | None = None, *, mmap: bool = True) -> list[Trajectory]:
    """Load and validate an MTT replay buffer file.

    :param shapes: parameter shapes of the target model (``FunctionalModel.shapes``); when
        omitted, all checkpoints must agree with the file's first one.
    :returns: ``list[trajectory]`` with float32 tensors (memory-mapped where possible).
    :raises BufferFormatError: naming the file, expert, checkpoint and parameter at fault.
    """
    path = Path(path)
    data = torch_load_untrusted(path, mmap=mmap)
    if not isinstance(data, (list, tuple)) or not data:
        kind = "an empty list" if isinstance(data, (list, tuple)) else f"a {type(data).__name__}"
        raise BufferFormatError(f"{path} holds {kind}, expected a list of expert trajectories")
    trajectories = []
    length = None
    for e, trajectory in enumerate(data):
        checked = validate_trajectory(trajectory, f"{path}: expert {e}", shapes, names)
        if shapes is None:
            shapes = [tuple(t.shape) for t in checked[0]]
        if length is not None and len(checked) != length:
            raise BufferFormatError(
                f"{path}: expert {e} has {len(checked)} checkpoints but expert 0 has {length}")
        length = len(checked)
        trajectories.append(checked)
    return trajectories


def save_replay_buffer(trajectories: Sequence[Trajectory], path: str | Path) -> Path:
    """Write ``trajectories`` in the MTT format (plain lists of CPU float32 tensors), atomically."""
    payload = [[[t.detach().to("cpu", torch.float32).contiguous().clone() for t in checkpoint]
                for checkpoint in trajectory] for trajectory in trajectories]
    atomic_torch_save(payload, path)
    return Path(path)
