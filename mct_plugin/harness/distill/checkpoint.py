"""Checkpoints of a distillation run: everything ``--resume`` needs, written atomically.

``checkpoint.pt`` holds the synthetic images, alpha, both optimizer states, the best evaluation
so far, the state of the run's random stream (:mod:`.draws`) and, per rank, the sampler and
matcher state and torch's, Python's and NumPy's global generator states. Rank 0 writes it; every
rank reads its own part back. Format 3 added the stream; earlier checkpoints drew from per-rank
global generators and cannot be continued bit for bit.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..errors import RunDirectoryError
from ..io.atomic import atomic_torch_save
from ..io.rundir import CHECKPOINT, RunDirectory
from ..io.untrusted import torch_load_untrusted
from ..runtime.distributed import SINGLE_PROCESS, DistContext

FORMAT = 3


def rng_state() -> dict:
    """torch, Python and NumPy RNG states, as tensors and plain values (weights-only loadable)."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class CheckpointStore:
    """Reads and writes ``checkpoint.pt`` of one run directory (a collective of the processes of
    ``dist``)."""

    def __init__(self, run_dir: RunDirectory, dist: DistContext = SINGLE_PROCESS) -> None:
        self.run_dir = run_dir
        self.path = run_dir.file(CHECKPOINT)
        self.ctx = dist

    def save(self, iteration: int, shared: dict[str, Any], rank_state: dict[str, Any]) -> bool:
        """Gather every rank's ``rank_state``; rank 0 writes them with ``shared`` (the state that
        all ranks have in common), to be resumed at ``iteration``. Returns whether this process
        wrote the file."""
        ranks = self.ctx.gather_objects(rank_state)
        if not self.ctx.is_main:
            return False
        state = {"format": FORMAT, "iteration": iteration, "world_size": self.ctx.world_size, **shared, "ranks": ranks}
        atomic_torch_save(state, self.path)
        return True

    def load(self) -> tuple[dict, dict]:
        """``(shared state, this rank's state)``; a one-line error for files that are not checkpoints."""
        state = torch_load_untrusted(self.path, mmap=False)
        try:
            ranks = state["ranks"]
            if not isinstance(ranks, list):
                raise TypeError("ranks is not a list")
        except (KeyError, TypeError) as exc:
            raise RunDirectoryError(f"{self.path} is not a usable checkpoint ({exc})") from exc
        if len(ranks) != self.ctx.world_size:
            raise RunDirectoryError(f"cannot resume {self.run_dir.path}: it was written by {len(ranks)} process(es), "
                                    f"this run has {self.ctx.world_size}; resume with the same number of processes")
        return state, ranks[self.ctx.rank]
