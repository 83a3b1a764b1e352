"""The one resume decision: which options a resumed run may change, and the check that holds
every caller to it (``dd-harness distill --resume`` and ``Distillation(..., resume=True)``).

A resumed run continues the recorded experiment: every option in its ``config.json`` must keep its
value, except those in :data:`MAY_CHANGE_ON_RESUME` (how long to run, how often to checkpoint,
where the inputs are now, the device and trackers, and what is reported without changing the
synthetic set: snapshots, the random-subset baseline, the stall warning's window and tolerance).
A refused resume names every difference as the command line spells it; an accepted change is
written back to ``config.json`` with the previous values kept in its ``resumed`` history
(:func:`resumed_record`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
import os
from typing import Any, Iterable, Mapping

from ..command_options import RECORD_KEYS
from ..errors import RunDirectoryError
from ..options import flag

MAY_CHANGE_ON_RESUME = frozenset({"iterations", "checkpoint_every", "buffer_path", "data_path", "download", "device",
                                  "track", "save_every_eval", "baseline", "stall_iterations", "stall_tolerance",
                                  "alpha_frozen_iterations"})
PATH_OPTIONS = ("buffer_path", "data_path", "out")
# the run directory itself may move between the run and its resume
NOT_COMPARED = RECORD_KEYS | {"out"}
# left to the matcher when not given: a run that recorded None resolved them the same way
RESOLVED_BY_THE_RUN = frozenset({"sampler", "gradient_mode", "meta_batch"})


def absolute(path: str) -> str:
    """An absolute path without following symbolic links (a broken link is reported where it is used)."""
    return os.path.abspath(os.path.expanduser(path))


def option_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a ``config.json`` record, plugin options at the top level, as JSON values
    (lists for tuples), paths absolute."""
    values = json.loads(json.dumps({k: v for k, v in record.items() if k != "plugin_options"}))
    values.update(json.loads(json.dumps(record.get("plugin_options") or {})))
    for name in PATH_OPTIONS:
        if isinstance(values.get(name), str):
            values[name] = absolute(values[name])
    return {k: v for k, v in values.items() if k not in NOT_COMPARED}


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def resume_changes(out: Any, recorded: Mapping[str, Any], requested: Mapping[str, Any],
                   names: Iterable[str] | None = None) -> dict[str, Any]:
    """The options of ``requested`` (a record, as :meth:`Distillation.record` makes) that differ
    from ``recorded`` (the run's ``config.json``), among ``names`` (default: all), as
    ``{name: previous value}``.

    :raises RunDirectoryError: an option outside :data:`MAY_CHANGE_ON_RESUME` differs; the message
        lists every such option with both values.
    """
    before, after = option_values(recorded), option_values(requested)
    wanted = set(after if names is None else names)
    changes, conflicts = {}, []
    for name, value in after.items():
        if name not in wanted or name not in before or value == before[name]:
            continue  # an option the run's version did not record is not compared
        if before[name] is None and name in RESOLVED_BY_THE_RUN:
            continue
        if name in MAY_CHANGE_ON_RESUME:
            changes[name] = before[name]
        else:
            conflicts.append(f"{flag(name)} {_shown(value)} (the run has {_shown(before[name])})")
    if conflicts:
        raise RunDirectoryError(f"cannot resume {out}: {'; '.join(conflicts)} would change the run; resume without "
                                f"them, or start a new run (another --out, or --overwrite)")
    return changes


def resumed_record(recorded: Mapping[str, Any], current: Mapping[str, Any], changes: Mapping[str, Any],
                   iteration: int) -> dict:
    """``config.json`` after a resume that changed ``changes`` (``{name: previous value}``) at
    ``iteration``: the current values, and the history of every accepted change under ``resumed``."""
    history = list(recorded.get("resumed") or [])
    history.append({"iteration": iteration, "previous": dict(changes)})
    return {**current, "resumed": history}


@dataclass(frozen=True)
class RecordedExperts:
    """The expert files a run's ``config.json`` recorded (``buffer_files``: name -> digest), which
    a run started from that file (``distill --config``) must read, unless ``accept_others``."""

    where: str
    digests: dict[str, str]
    accept_others: bool = False
