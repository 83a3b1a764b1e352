"""Where each job of a study stands, read from its own files (no markers of the study's own).

A job is *done* when its run says so: the experts' records count the experts asked for, the
distillation's ``run_summary.json`` says ``finished``, the evaluation's ``eval.json`` (in its own
folder) records the protocol asked for. It is *running* while a process holds its folder's lock (the study
runner holds it for the job's life), *failed* when its last attempt ended with an error (the error
line is kept in ``failed.txt`` until the job starts again), else *pending*.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..io.locks import is_locked
from .jobs import Job

DONE, RUNNING, FAILED, PENDING = "done", "running", "failed", "pending"
FAILED_FILE = "failed.txt"


@dataclass(frozen=True)
class JobState:
    job: Job
    state: str
    detail: str = ""


def read_json(path: Path) -> dict | None:
    """A JSON object from ``path``, or None (missing, unreadable, not an object)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def experts_done(job: Job) -> bool:
    from ..experts.metadata import read_buffer_record

    records = [read_buffer_record(path) for path in job.run_dir.glob("*/*/replay_buffer_*.pt")]
    return sum(record["experts"] for record in records if record) >= job.options["num_experts"]


def distill_done(job: Job) -> bool:
    return bool((read_json(job.run_dir / "run_summary.json") or {}).get("finished"))


def eval_done(job: Job) -> bool:
    """The set's ``eval.json`` records this job's networks, seed and (where given) epochs and models."""
    protocol = (read_json(job.run_dir / "eval.json") or {}).get("protocol") or {}
    wanted = {"networks": job.options["num_eval"], "seed": job.options["seed"]}
    if job.options.get("epoch_eval_train") is not None:
        wanted["epochs"] = job.options["epoch_eval_train"]
    if job.options.get("models"):
        wanted["models"] = list(job.options["models"])
    return bool(protocol) and all(protocol.get(k) == v for k, v in wanted.items())


IS_DONE = {"experts": experts_done, "distill": distill_done, "eval": eval_done}


def is_done(job: Job) -> bool:
    return IS_DONE[job.kind](job)


def state_of(job: Job) -> JobState:
    if is_done(job):
        return JobState(job, DONE)
    if is_locked(job.folder):
        return JobState(job, RUNNING)
    failed = job.folder / FAILED_FILE
    if failed.is_file():
        return JobState(job, FAILED, failed.read_text(encoding="utf-8").strip())
    return JobState(job, PENDING)
