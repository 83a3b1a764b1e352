"""What a replay buffer was trained with: a JSON file next to it (``replay_buffer_3.json`` for
``replay_buffer_3.pt``), written by ``dd-harness experts``.

The MTT buffer format itself stores nothing but the tensors (and the public layout's folder names
say only the dataset, the model and, for CIFAR, ZCA), so the training options are recorded beside
it, with the seed of every expert: the public code ignores the extra file, ``distill --recipe``
compares the options with the experts the recipe was made for, and ``dd-harness experts`` with its
own before it adds to a folder. Buffers written elsewhere (the public ``buffer.py``) have none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ... import __version__
from ..io.atomic import atomic_write_json

FORMAT_NAME = "mct_plugin.expert_training"
FORMAT_VERSION = 2  # 2 added expert_seeds


def metadata_path(buffer: str | Path) -> Path:
    """``.../replay_buffer_3.pt`` -> ``.../replay_buffer_3.json``."""
    return Path(buffer).with_suffix(".json")


def write_training_record(buffer: str | Path, training: Mapping[str, Any], expert_seeds: Sequence[int]) -> None:
    """Record (atomically) that ``buffer`` holds one expert per seed of ``expert_seeds`` (in file
    order), trained with ``training`` (the ``dd-harness experts`` options that shape them:
    dataset, model, zca, epochs, ...)."""
    record = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "experts": len(expert_seeds),
              "expert_seeds": list(expert_seeds), "training": dict(training), "created_by": f"mct_plugin {__version__}"}
    atomic_write_json(metadata_path(buffer), record)


def read_buffer_record(buffer: str | Path) -> dict[str, Any] | None:
    """The whole record next to ``buffer`` (``experts``, ``training`` and, from format version 2,
    ``expert_seeds``), or None where there is no readable record of this format (a file from
    elsewhere is not an error: the buffer is simply unrecorded)."""
    try:
        record = json.loads(metadata_path(buffer).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if (not isinstance(record, dict) or record.get("format") != FORMAT_NAME
            or not isinstance(record.get("training"), dict) or not _is_count(record.get("experts"))
            or not _are_seeds(record.get("expert_seeds", []))):
        return None
    return record


def read_training_record(buffer: str | Path) -> dict[str, Any] | None:
    """The training options recorded next to ``buffer``, or None (see :func:`read_buffer_record`)."""
    record = read_buffer_record(buffer)
    return record["training"] if record else None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _are_seeds(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(seed, int) and not isinstance(seed, bool) for seed in value)
