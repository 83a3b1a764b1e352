"""Running a benchmark's jobs in worker subprocesses, in parts of bounded wall time.

A job is anything a command line can do and a file can prove done (a distillation run's
``summary.json``, an evaluation's JSON). :func:`run_jobs` keeps ``workers`` of them running (one
thread each on a 2-core machine is more runs per hour than one run with two threads), starts no
job after the deadline and sends SIGINT to the jobs still running at the deadline: a distillation
checkpoints and exits, an evaluation is simply redone by the next part. The same command then
continues where the part stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Hashable, Sequence

ROOT = Path(__file__).resolve().parent.parent


def add_part_options(parser, cache_help: str = "folder of experts and runs (default: user cache)") -> None:
    """The options of a benchmark that runs in parts: ``--workers``, ``--hours``, ``--cache``, ``--out``."""
    parser.add_argument("--workers", type=int, default=2, help="jobs run side by side (one thread each)")
    parser.add_argument("--hours", type=float, default=1.8,
                        help="the part's length: no job starts after this many hours, and the jobs still going "
                             "then are stopped (a distillation is checkpointed); the same command continues")
    parser.add_argument("--cache", default=None, help=cache_help)
    parser.add_argument("--out", default=None, help="folder for the JSON/PNG (default benchmarks/results)")


def _default_sigint() -> None:
    """In a job's process before it starts: SIGINT back to its default, so the job's Python turns it
    into KeyboardInterrupt. A part started in the background of a shell (``nohup ... &``) has
    SIGINT ignored, and a child inherits that: it would never hear the deadline."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def worker_environment(workers: int, cores: int = 2) -> dict:
    """The environment of a worker: the cores shared out as threads (at least one each)."""
    threads = str(max(1, cores // workers))
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def run_jobs(jobs: Sequence[Hashable], command: Callable[[Hashable], list[str]], done: Callable[[Hashable], bool],
             workers: int, deadline: float, log: Callable[[str], None],
             finished: Callable[[Hashable], None] = lambda job: None) -> bool:
    """Run the jobs of ``jobs`` that are not ``done`` (in order), ``workers`` at a time, each as
    ``command(job)`` from the repository root; ``finished(job)`` is called after each one that
    completed. Returns whether every job is done.

    :param deadline: ``time.time()`` after which no job starts; jobs running then get SIGINT and
        count as not done (unless they finished anyway).
    :raises RuntimeError: a job failed (non-zero exit before the deadline) or did not leave its
        proof of completion.
    """
    pending = [job for job in jobs if not done(job)]
    running: list[tuple[subprocess.Popen, Hashable]] = []
    env = worker_environment(workers)
    interrupted = False
    try:
        while pending or running:
            while pending and len(running) < workers and time.time() < deadline:
                job = pending.pop(0)
                running.append((subprocess.Popen(command(job), env=env, cwd=ROOT,
                                                 preexec_fn=_default_sigint if os.name == "posix" else None), job))
                log(f"started {job} ({len(pending)} waiting)")
            if not running:
                break
            if time.time() >= deadline and not interrupted:
                log(f"the part's time is spent: stopping {len(running)} job(s) in flight (they resume next time)")
                for proc, _ in running:
                    proc.send_signal(signal.SIGINT)
                interrupted = True
            time.sleep(1)
            for proc, job in list(running):
                if proc.poll() is None:
                    continue
                running.remove((proc, job))
                if done(job):
                    finished(job)
                elif not interrupted:
                    raise RuntimeError(f"job {job} failed with status {proc.returncode}: {' '.join(command(job))}")
    except KeyboardInterrupt:
        for proc, _ in running:  # each child got the same SIGINT: a distillation checkpoints and exits
            proc.wait()
        raise
    return all(done(job) for job in jobs)
