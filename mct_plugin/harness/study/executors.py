"""Executors: how a study's commands are run (``--executor NAME``, a component kind like matchers).

An executor is built like every component, ``cls(options, context)``, and runs a batch of
:class:`Launch` es with :meth:`Executor.execute`: each is one ``dd-harness`` command line whose
output goes to its log file. It returns every launch's exit status, or None for one it stopped
at the deadline (a distillation checkpoints on SIGINT and continues next time). The harness
registers ``local`` (processes on this machine) and ``submitit`` (Slurm through
``submitit.AutoExecutor``, see :mod:`.submitit_executor`); a plugin adds others through
``dd_register_executors``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from ..options import option


@dataclass(frozen=True)
class Launch:
    """One command to run: ``argv``, with its output appended to ``log_file``."""

    name: str
    argv: tuple[str, ...]
    log_file: Path
    describe: str = ""


class Executor:
    """Runs :class:`Launch` es (subclasses: ``name``, ``description``, ``Options``, :meth:`execute`)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, options: Any, context: Any) -> None:
        self.options = options
        self.context = context
        self.report = context.report

    def execute(self, launches: Sequence[Launch], deadline: float) -> dict[str, int | None]:
        """Run every launch; ``deadline`` (``time.time()``): start none after it, stop those still
        running then (their status is None). A KeyboardInterrupt stops the running commands the
        same way (each gets SIGINT) and is raised again once they have exited."""
        raise NotImplementedError


@dataclass(frozen=True)
class LocalOptions:
    workers: int = option(2, "commands run side by side on this machine", minimum=1, maximum=1024)
    threads: int | None = option(None, "torch threads of each command (default: the cores shared out among "
                                       "--workers, at least one; the same in every part of a study, so a job "
                                       "continued later computes as it started)",
                                 minimum=1, maximum=1024)


def child_setup() -> None:
    """In a command's process before it starts: SIGINT back to its default (a runner started in
    the background has it ignored, and the command would never hear the deadline), and on Linux
    the command dies with the runner (a SIGKILLed study leaves no orphan holding a run's lock)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no glibc
            pass


def thread_environment(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


class LocalProcesses(Executor):
    """Processes on this machine, ``workers`` at a time, one thread each by default on 2 cores."""

    Options = LocalOptions

    def execute(self, launches: Sequence[Launch], deadline: float) -> dict[str, int | None]:
        workers = self.options.workers
        # not from the batch's size: a job resumed in a smaller batch would compute with other threads
        threads = self.options.threads or max(1, (os.cpu_count() or 1) // workers)
        env = thread_environment(threads)
        pending = list(launches)
        running: list[tuple[subprocess.Popen, Launch, Any]] = []
        statuses: dict[str, int | None] = {}
        stopping = False
        try:
            while pending or running:
                while pending and len(running) < workers and time.time() < deadline:
                    launch = pending.pop(0)
                    log = open(launch.log_file, "ab")
                    running.append((subprocess.Popen(launch.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                     start_new_session=True,  # SIGINT from the runner only, once
                                                     preexec_fn=child_setup if os.name == "posix" else None),
                                    launch, log))
                    self.report(f"started {launch.describe or launch.name} ({len(pending)} waiting)")
                if not running:
                    break
                if time.time() >= deadline and not stopping:
                    self.report(f"the part's time is spent: stopping {len(running)} command(s) in flight "
                                f"(they continue next time)")
                    _interrupt(running)
                    stopping = True
                time.sleep(0.2)
                for entry in [e for e in running if e[0].poll() is not None]:
                    running.remove(entry)
                    entry[2].close()
                    statuses[entry[1].name] = None if stopping else entry[0].returncode
        except KeyboardInterrupt:
            _interrupt(running)
            for proc, _, log in running:
                proc.wait()
                log.close()
            raise
        return statuses


def _interrupt(running: Sequence[tuple[subprocess.Popen, Launch, Any]]) -> None:
    for proc, *_ in running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)


def executor_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The executor section of a study file less its ``name``."""
    return {k: v for k, v in values.items() if k != "name"}
