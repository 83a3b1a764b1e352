"""What a replay buffer was trained with: a JSON file next to it (``replay_buffer_3.json`` for
``replay_buffer_3.pt``), written by ``dd-harness experts``.

The MTT buffer format itself stores nothing but the tensors (and the public layout's folder names
say only the dataset, the model and, for CIFAR, ZCA), so the training options are recorded beside
it: the public code ignores the extra file, and ``distill --recipe`` compares them with the
experts the recipe was made for. Buffers written elsewhere (the public ``buffer.py``) have none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ... import __version__
from ..io.atomic import atomic_write_json

FORMAT_NAME = "mct_plugin.expert_training"
FORMAT_VERSION = 1


def metadata_path(buffer: str | Path) -> Path:
    """``.../replay_buffer_3.pt`` -> ``.../replay_buffer_3.json``."""
    return Path(buffer).with_suffix(".json")


def write_training_record(buffer: str | Path, training: Mapping[str, Any], experts: int) -> None:
    """Record (atomically) that ``buffer`` holds ``experts`` experts trained with ``training``
    (the ``dd-harness experts`` options that shape them: dataset, model, zca, epochs, ...)."""
    record = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "experts": experts,
              "training": dict(training), "created_by": f"mct_plugin {__version__}"}
    atomic_write_json(metadata_path(buffer), record)


def read_training_record(buffer: str | Path) -> dict[str, Any] | None:
    """The training options recorded next to ``buffer``, or None where there is no readable record
    of this format (a file from elsewhere is not an error: the buffer is simply unrecorded)."""
    try:
        record = json.loads(metadata_path(buffer).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME or not isinstance(record.get("training"), dict):
        return None
    return record["training"]
