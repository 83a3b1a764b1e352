"""Reading a distilled set back from a run directory (``images.pt``, ``labels.pt``, ``lr.pt``, as
:meth:`~mct_plugin.harness.distill.synthetic.SyntheticSet.save` writes them), checked like any
file a stranger may have made, and finding the sets a run keeps: the final one (the run
directory itself), the best-evaluated one (``best/``) and the snapshots of ``--save-every-eval``
(``snapshots/images_{it}.pt`` ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BufferFormatError, ConfigError, RunDirectoryError
from ..io.rundir import CHECKPOINT
from ..io.untrusted import torch_load_untrusted

SYNTHETIC_FILES = ("images.pt", "labels.pt", "lr.pt")
FINAL, BEST, SNAPSHOTS = "final", "best", "snapshots"


@dataclass(frozen=True)
class SavedSet:
    """One synthetic set kept in a run: ``kind`` final, best or snapshot, the ``iteration`` it
    holds (None where the run does not say), where its files are (``directory``, names with
    ``suffix``) and where ``dd-harness eval`` writes its report on it."""

    kind: str
    iteration: int | None
    directory: Path
    suffix: str = ""

    def describe(self) -> str:
        """``best set (iteration 30)``: what figures and reports call it; a set of iteration 0 is
        said to be the initial images (a best set: no later evaluation beat them)."""
        name = f"{self.kind} set (iteration {'unknown' if self.iteration is None else self.iteration})"
        if self.iteration != 0:
            return name
        return name + (" = the initial images: no later evaluation beat them" if self.kind == BEST
                       else " = the initial images")

    def load(self, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
        return load_synthetic(self.directory, num_classes, self.suffix)

    def report_files(self) -> tuple[Path, Path]:
        """(eval.json, eval_table.md) beside the set: ``RUN/``, ``RUN/best/``, or
        ``RUN/snapshots/eval_{it}.json`` for a snapshot."""
        return self.directory / f"eval{self.suffix}.json", self.directory / f"eval_table{self.suffix}.md"


def split_run_path(path: str | Path) -> tuple[Path, str | None]:
    """``RUN/best`` -> (``RUN``, ``best``): the best set is a set of its run; any other path is
    a run directory of its own (no set implied)."""
    path = Path(path).expanduser()
    if path.name == BEST and not (path / "config.json").is_file() and (path.parent / "config.json").is_file():
        return path.parent, BEST
    return path, None


def final_iteration(run: Path, iterations: int) -> int | None:
    """The iteration of the set in ``run/images.pt``: the one its last checkpoint resumes at (the
    set written with it), at most ``iterations``; None without a readable checkpoint."""
    try:
        state = torch_load_untrusted(run / CHECKPOINT)
    except BufferFormatError:
        return None
    resumes_at = state.get("iteration") if isinstance(state, dict) else None
    return min(resumes_at, iterations) if isinstance(resumes_at, int) else None


def locate_set(run: Path, which: str | None, iterations: int, best_iteration: int | None) -> SavedSet:
    """The set ``which`` (``final``, ``best`` or an iteration of ``snapshots/``; None: final) of
    the run in ``run`` with ``iterations`` iterations, whose best evaluation was at ``best_iteration``.

    :raises ConfigError: ``which`` is none of these.
    :raises RunDirectoryError: the run does not keep that set (the message lists what it keeps).
    """
    which = FINAL if which is None else which.strip()
    if which == FINAL:
        return SavedSet(FINAL, final_iteration(run, iterations), run)
    if which == BEST:
        if not (run / BEST / "images.pt").is_file():
            raise RunDirectoryError(f"{run / BEST} holds no set: the run evaluated nothing (--eval-it 0) or stopped "
                                    f"before its first evaluation")
        return SavedSet(BEST, best_iteration, run / BEST)
    if not re.fullmatch(r"\d+", which):
        raise ConfigError(f"--set must be final, best or an iteration kept in snapshots/ (got {which!r})")
    iteration = int(which)
    snapshot = SavedSet("snapshot", iteration, run / SNAPSHOTS, f"_{iteration}")
    if not (snapshot.directory / f"images{snapshot.suffix}.pt").is_file():
        kept = sorted(int(m.group(1)) for p in (run / SNAPSHOTS).glob("images_*.pt")
                      if (m := re.fullmatch(r"images_(\d+)\.pt", p.name)))
        raise RunDirectoryError(f"{run} keeps no set of iteration {iteration} (snapshots: "
                                f"{', '.join(map(str, kept)) or 'none; distil with --save-every-eval to keep them'})")
    return snapshot


def load_synthetic(directory: str | Path, num_classes: int | None = None,
                   suffix: str = "") -> tuple[torch.Tensor, torch.Tensor, float]:
    """(images, labels, lr) from a run directory (``images{suffix}.pt`` ... with a suffix, e.g. a
    snapshot), loaded weights-only and checked: a non-empty finite (N, C, H, W) float tensor, one
    label per image (class indices in ``0..num_classes-1`` or soft labels of width
    ``num_classes``: finite, non-negative), a finite positive step size."""
    directory = Path(directory)
    where = {name: directory / name.replace(".pt", f"{suffix}.pt") for name in SYNTHETIC_FILES}
    missing = [path.name for path in where.values() if not path.is_file()]
    if missing:
        raise RunDirectoryError(f"{directory} has no {', '.join(missing)}: not a finished distillation run")
    images = torch_load_untrusted(where["images.pt"], mmap=False)
    labels = torch_load_untrusted(where["labels.pt"], mmap=False)
    lr = torch_load_untrusted(where["lr.pt"], mmap=False)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise RunDirectoryError(f"{where['images.pt']} is not an (N, C, H, W) floating-point tensor")
    if images.shape[0] == 0 or images.numel() == 0:
        raise RunDirectoryError(f"{where['images.pt']} holds no images")
    if not torch.isfinite(images).all():
        raise RunDirectoryError(f"{where['images.pt']} contains NaN or Inf")
    if not isinstance(labels, torch.Tensor) or labels.dim() not in (1, 2) or labels.shape[0] != images.shape[0]:
        raise RunDirectoryError(f"{where['labels.pt']} does not hold one label per image")
    if labels.dim() == 1:
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise RunDirectoryError(f"{where['labels.pt']} holds {labels.dtype} labels; class indices must be integers")
        if int(labels.min()) < 0 or (num_classes is not None and int(labels.max()) >= num_classes):
            raise RunDirectoryError(f"{where['labels.pt']} holds class indices {int(labels.min())}..{int(labels.max())}, "
                                    f"outside 0..{(num_classes or 0) - 1}")
        labels = labels.long()
    else:
        if num_classes is not None and labels.shape[1] != num_classes:
            raise RunDirectoryError(f"{where['labels.pt']} holds soft labels of width {labels.shape[1]} for "
                                    f"{num_classes} classes")
        if not labels.is_floating_point() or not torch.isfinite(labels).all() or (labels < 0).any():
            raise RunDirectoryError(f"{where['labels.pt']}: soft labels must be finite, non-negative numbers")
        labels = labels.float()
    if not isinstance(lr, torch.Tensor) or lr.numel() != 1 or not lr.is_floating_point():
        raise RunDirectoryError(f"{where['lr.pt']} is not a scalar floating-point tensor")
    rate = float(lr)
    if not (rate > 0 and rate < float("inf")):
        raise RunDirectoryError(f"{where['lr.pt']} holds the step size {rate}; it must be a finite positive number")
    return images.float(), labels, rate
