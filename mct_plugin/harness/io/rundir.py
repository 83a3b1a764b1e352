"""A distillation run directory: refuses to clobber results, appends metrics, keeps checkpoints.

Files: ``config.json`` (resolved config), ``metrics.jsonl`` (one JSON row per iteration, and
an event row per warning), ``run_summary.json`` (the final and the best set's accuracy, with their
iterations, at the end of a run), ``images.pt`` / ``labels.pt`` / ``lr.pt`` (the latest synthetic
set, DD-Ranking readable), ``best/`` (the best-evaluated set, with its ``synthetic.png``),
``snapshots/`` (the set of every evaluation, with ``--save-every-eval``), ``trackers/``
(experiment trackers' logs), ``synthetic.png``, ``curves.png``, ``checkpoint.pt`` (everything
``--resume`` needs), ``eval.json`` and ``eval_table.md`` (written by ``dd-harness eval`` beside
the set it evaluated: here, in ``best/``, or ``snapshots/eval_{it}.json``), and
``.dd-harness.lock`` while a command writes into the folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from .atomic import atomic_write_json, atomic_write_text, ensure_directory, remove_stale_temporaries
from ..errors import OutputError, RunDirectoryError

RESULT_FILES = ("config.json", "metrics.jsonl", "run_summary.json", "images.pt", "labels.pt", "lr.pt", "synthetic.png",
                "curves.png", "checkpoint.pt", "eval.json", "eval_table.md", "best", "snapshots", "trackers")
CHECKPOINT = "checkpoint.pt"


class RunDirectory:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()

    def existing_results(self) -> list[str]:
        return [name for name in RESULT_FILES if (self.path / name).exists()]

    def check_available(self, overwrite: bool, resume: bool) -> bool:
        """Raise unless the directory may be used as asked (nothing is changed here). With ``resume``:
        return whether there is a checkpoint to continue from (False: the run stopped before its first
        checkpoint, and restarts from the options its ``config.json`` recorded)."""
        if resume:
            if (self.path / CHECKPOINT).is_file():
                return True
            if (self.path / "config.json").is_file():
                return False
            raise RunDirectoryError(f"cannot resume {self.path}: nothing was recorded there (no config.json); "
                                    f"rerun the original command")
        found = self.existing_results()
        if found and not overwrite:
            raise RunDirectoryError(
                f"{self.path} already holds results ({', '.join(found)}); pass --overwrite to replace "
                f"them or --resume to continue that run"
            )
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path} exists and is not a directory")
        return False

    def prepare(self, overwrite: bool) -> None:
        """Create the directory; with ``overwrite`` remove earlier results first."""
        ensure_directory(self.path)
        remove_stale_temporaries(self.path)
        if overwrite:
            self.remove_results()

    def remove_results(self) -> None:
        """Delete every result file and folder of a run (not other files a user keeps there)."""
        for name in RESULT_FILES:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, config: dict) -> None:
        atomic_write_json(self.path / "config.json", config)

    def read_config(self) -> dict:
        path = self.path / "config.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RunDirectoryError(f"{path} is missing: {self.path} is not a run directory") from None
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RunDirectoryError(f"{path} is unreadable: {str(exc)[:160]}") from exc

    # metrics ---------------------------------------------------------------------------
    def read_metrics(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn last line from a crash: everything before it is intact
        return rows

    def rewrite_metrics(self, rows: list[dict]) -> None:
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def append_metrics(self, row: dict) -> None:
        """Append one row and fsync (a crash can tear at most this line, which reading skips)."""
        path = self.path / "metrics.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror
            raise OutputError(f"could not write {path}: {reason}") from exc
