"""Cycling through expert trajectories stored in many files, one file in memory at a time.

The order follows the public MTT code: files are shuffled, the experts of the current file are
shuffled and used in turn, then the next file is loaded. Buffer directories can be far larger
than memory, so only one file's experts are held (memory-mapped where the loader allows).
Which files take part (``--max-files``: the first N in name order) is the caller's choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Generic, Sequence, TypeVar

import torch

T = TypeVar("T")


class ExpertPool(Generic[T]):
    """``next()`` returns ``(expert, label)``; ``label`` is ``"file.pt#index"``.

    :param load: reads one file and returns its experts (validated by the caller's loader).
    :param max_experts: use only the first N experts of every file (public ``--max_experts``).
    """

    def __init__(self, files: Sequence[Path], load: Callable[[Path], list[T]],
                 max_experts: int | None = None) -> None:
        if not files:
            raise ValueError("ExpertPool needs at least one file")
        self.files = list(files)
        self.load = load
        self.max_experts = max_experts
        self.file_order = self._shuffled(len(self.files))
        self.file_pos = 0
        self.expert_order: list[int] = []
        self.expert_pos = 0
        self._loaded_file: int | None = None
        self._experts: list[T] = []

    @staticmethod
    def _shuffled(n: int) -> list[int]:
        return torch.randperm(n).tolist()

    def _load_current(self) -> None:
        file_id = self.file_order[self.file_pos]
        if self._loaded_file != file_id:
            self._experts = self.load(self.files[file_id])[: self.max_experts or None]
            self._loaded_file = file_id

    def _ensure_loaded(self) -> None:
        self._load_current()
        if not self.expert_order:
            self.expert_order = self._shuffled(len(self._experts))
            self.expert_pos = 0

    def peek_first(self) -> T:
        """An expert of the current file, without advancing or drawing random numbers."""
        self._load_current()
        return self._experts[self.expert_order[self.expert_pos] if self.expert_order else 0]

    def next(self) -> tuple[T, str]:
        self._ensure_loaded()
        index = self.expert_order[self.expert_pos]
        expert, label = self._experts[index], f"{self.files[self._loaded_file].name}#{index}"
        self.expert_pos += 1
        if self.expert_pos == len(self.expert_order):
            self.file_pos += 1
            if self.file_pos == len(self.file_order):
                self.file_pos = 0
                self.file_order = self._shuffled(len(self.files))
            self.expert_order = []  # the next call loads the next file (or the same) and shuffles
        return expert, label

    def state_dict(self) -> dict:
        # "subset" (every file) keeps the checkpoint layout of earlier versions
        return {"file_order": self.file_order, "subset": list(range(len(self.files))), "file_pos": self.file_pos,
                "expert_order": self.expert_order, "expert_pos": self.expert_pos}

    def load_state_dict(self, state: dict) -> None:
        self.file_order = list(state["file_order"])
        self.file_pos = int(state["file_pos"])
        self.expert_order = list(state["expert_order"])
        self.expert_pos = int(state["expert_pos"])
        self._loaded_file = None
