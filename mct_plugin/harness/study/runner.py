"""A study: its file, its jobs, running them in parts, where they stand, its report.

``Study.from_file(path, components=build_components()).run(hours=1.5)`` is ``dd-harness study run``.
The runner holds the study folder's lock (a second runner on the same folder is refused in one
line), runs the jobs that are not done kind by kind (experts, distillations, evaluations) through
an executor, and holds each job's folder lock while it runs (``status`` shows it as running). A
job that fails keeps its error line in ``failed.txt`` and the others go on; the jobs that need it
wait. Interrupted at any point, the same call continues: finished jobs are done by their own
files, a distillation continues from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..components import ComponentContext, Components
from ..errors import HarnessError
from ..io.atomic import atomic_write_json, ensure_directory
from ..io.locks import OutputLock
from .executors import Executor, Launch, executor_options
from .jobs import KINDS, Job, expand
from .spec import StudySpec, read_study
from .state import DONE, FAILED, FAILED_FILE, JobState, is_done, state_of

log = logging.getLogger("mct_plugin")


@dataclass(frozen=True)
class ExecutorConfig:
    """What an executor is built with (its context's ``config``): the study folder and the options."""

    folder: Path
    plugin_options: Mapping[str, Any]


@dataclass(frozen=True)
class RunOutcome:
    """What one ``run`` achieved: the jobs done, failed and still to do."""

    done: int
    failed: tuple[str, ...]
    remaining: int

    @property
    def complete(self) -> bool:
        return not self.failed and not self.remaining


def error_line(log_file: Path, status: int) -> str:
    """The last ``dd-harness: error`` line of a job's log, else its last line, else the status."""
    try:
        lines = [line for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    errors = [line for line in lines if re.match(r"^dd-harness: (error|interrupted)", line)]
    last = (errors or lines or [f"exit status {status}"])[-1]
    return f"{last} (exit status {status}; log: {log_file})"


class Study:
    """A study file read and expanded (see the module's docstring)."""

    def __init__(self, spec: StudySpec, components: Components, report: Callable[[str], None] = log.info) -> None:
        self.spec = spec
        self.components = components
        self.report = report
        self._jobs: list[Job] | None = None

    @classmethod
    def from_file(cls, path: str | Path, components: Components, *, folder: str | Path | None = None,
                  report: Callable[[str], None] = log.info) -> "Study":
        return cls(read_study(path, folder), components, report)

    @property
    def folder(self) -> Path:
        return self.spec.folder

    def jobs(self) -> list[Job]:
        """Every job, experts first (resolved once)."""
        if self._jobs is None:
            self._jobs = expand(self.spec, self.components)
        return self._jobs

    def status(self) -> list[JobState]:
        return [state_of(job) for job in self.jobs()]

    def executor(self, name: str | None = None, options: Mapping[str, Any] | None = None) -> Executor:
        """The executor of the file's ``executor`` section, or ``name`` with ``options`` on top."""
        section = dict(self.spec.executor)
        if name is not None and name != section.get("name"):
            section = {"name": name}
        chosen = section["name"]
        values = {**executor_options(section), **(options or {})}
        context = ComponentContext(config=ExecutorConfig(self.folder, values), components=self.components,
                                   report=self.report)
        return self.components.build("executor", chosen, context)

    def run(self, hours: float | None = None, executor: str | None = None,
            executor_options: Mapping[str, Any] | None = None) -> RunOutcome:
        """Run the jobs that are not done, for at most ``hours`` (no job starts after; those running
        then are stopped and continue next time).

        :raises OutputInUseError: another runner holds the study folder.
        """
        deadline = time.time() + 3600 * hours if hours else float("inf")
        jobs = self.jobs()
        runner = self.executor(executor, executor_options)
        with OutputLock(self.folder, "dd-harness study run"):
            self.write_options([job for job in jobs if not is_done(job)])
            failed: set[str] = set()
            for kind in KINDS:
                waiting = [job for job in jobs if job.kind == kind and not is_done(job)]
                blocked = {job.name for job in waiting if any(need in failed or not self._done(need)
                                                               for need in job.needs)}
                failed |= blocked
                ready = [job for job in waiting if job.name not in blocked]
                if ready and time.time() < deadline:
                    failed |= self._execute(runner, ready, deadline)
                if time.time() >= deadline:
                    break
        states = self.status()
        outcome = RunOutcome(sum(s.state == DONE for s in states),
                             tuple(s.job.name for s in states if s.state == FAILED),
                             sum(s.state != DONE for s in states))
        self.report(f"{outcome.done} of {len(states)} jobs done" + (f", {len(outcome.failed)} failed (see 'dd-harness "
                                                                   f"study status {self.spec.path}')"
                                                                   if outcome.failed else ""))
        return outcome

    def _done(self, name: str) -> bool:
        return is_done(next(job for job in self.jobs() if job.name == name))

    def write_options(self, jobs: Sequence[Job]) -> None:
        """Each job's options file (a ``--config`` file of its command), written before it runs:
        the same for a fingerprint but for what is not fingerprinted (where a recipe file lives)."""
        for job in jobs:
            options = dict(job.options)
            if not job.options_file.is_file() or json.loads(job.options_file.read_text(encoding="utf-8")) != options:
                ensure_directory(job.folder)
                atomic_write_json(job.options_file, options)

    def _execute(self, runner: Executor, jobs: Sequence[Job], deadline: float) -> set[str]:
        """Run ``jobs`` through ``runner`` holding each one's lock; return the names of those that failed."""
        with ExitStack() as locks:
            for job in jobs:
                locks.enter_context(OutputLock(job.folder, f"dd-harness study run {self.spec.path}"))
                (job.folder / FAILED_FILE).unlink(missing_ok=True)
            launches = [Launch(job.name, tuple(job.command()), job.log_file,
                               f"{job.kind} {job.describe()}") for job in jobs]
            statuses = runner.execute(launches, deadline)
        failed = set()
        for job in jobs:
            status = statuses.get(job.name)
            if status is None or is_done(job):
                continue
            line = error_line(job.log_file, status) if status else f"ended without its result (log: {job.log_file})"
            (job.folder / FAILED_FILE).write_text(line + "\n", encoding="utf-8")
            self.report(f"failed: {job.kind} {job.describe()}: {line}")
            failed.add(job.name)
        return failed

    def require_finished(self) -> None:
        """Refuse a report of a study with no finished distillation."""
        if not any(s.state == DONE and s.job.kind == "distill" for s in self.status()):
            raise HarnessError(f"{self.spec.path}: no finished distillation yet (run 'dd-harness study run "
                               f"{self.spec.path}')")
