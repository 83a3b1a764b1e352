"""The ``submitit`` executor: a study's commands as Slurm jobs, through ``submitit.AutoExecutor``.

Each command is submitted as one job that runs the same ``dd-harness`` command line as the local
executor would (:func:`run_command`), so a Slurm job is an ordinary run directory that ``--resume``
continues; submitit's own files (pickles, its logs) go to ``STUDY/submitit``. The ``slurm_*``
options, ``timeout_min``, ``cpus_per_task``, ... are handed to ``update_parameters``;
``cluster: local`` runs the jobs as local processes (submitit's test backend) and ``debug`` in
this process. At the deadline (or on Ctrl-C) the jobs still running are cancelled: a Slurm
cancellation is SIGTERM, which a distillation treats as an interruption and checkpoints.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import ConfigError
from ..options import option
from .executors import Executor, Launch, thread_environment


@dataclass(frozen=True)
class SubmititOptions:
    cluster: str | None = option(None, "submitit's cluster: slurm, local (processes, for testing) or debug "
                                       "(default: slurm where sbatch exists, else local)")
    timeout_min: int = option(120, "each job's time limit in minutes (keep it under the run's checkpoint rhythm "
                                   "times a few: a cancelled run continues from its last checkpoint)", minimum=1)
    cpus_per_task: int = option(2, "CPU cores of each job (its torch threads)", minimum=1)
    gpus_per_node: int = option(0, "GPUs of each job", minimum=0)
    mem_gb: float | None = option(None, "memory of each job in GiB", above=0)
    slurm_partition: str | None = option(None, "Slurm partition")
    slurm_account: str | None = option(None, "Slurm account")
    slurm_qos: str | None = option(None, "Slurm quality of service")
    slurm_array_parallelism: int | None = option(None, "jobs of the study running at once on Slurm", minimum=1)
    slurm_additional_parameters: dict[str, Any] = option({}, "other sbatch parameters (name: value)", cli=False)


def run_command(argv: Sequence[str], log_file: str, threads: int) -> int:
    """What a submitted job does: the command, its output appended to ``log_file``; its exit status."""
    with open(log_file, "ab") as log:
        return subprocess.run(list(argv), stdout=log, stderr=subprocess.STDOUT, env=thread_environment(threads)).returncode


class SubmititJobs(Executor):
    Options = SubmititOptions

    def _executor(self):
        try:
            import submitit
        except ImportError:
            raise ConfigError("the submitit executor needs the submitit package: pip install 'mct_plugin[study]' "
                              "(or pip install submitit)") from None
        folder = self.context.config.folder / "submitit"
        executor = submitit.AutoExecutor(folder=folder, cluster=self.options.cluster)
        parameters = {k: v for k, v in dataclasses.asdict(self.options).items() if k != "cluster" and v is not None}
        if not parameters.pop("slurm_additional_parameters"):
            parameters.pop("slurm_additional_parameters", None)
        if executor.cluster != "slurm":
            parameters = {k: v for k, v in parameters.items() if not k.startswith("slurm_")}
        executor.update_parameters(**parameters)
        return executor

    def execute(self, launches: Sequence[Launch], deadline: float) -> dict[str, int | None]:
        if time.time() >= deadline or not launches:
            return {}
        executor = self._executor()
        jobs = []
        for launch in launches:
            job = executor.submit(run_command, list(launch.argv), str(launch.log_file), self.options.cpus_per_task)
            jobs.append((job, launch))
            self.report(f"submitted {launch.describe or launch.name} as job {job.job_id}")
        statuses: dict[str, int | None] = {}
        try:
            while len(statuses) < len(jobs):
                if time.time() >= deadline:
                    self.report("the part's time is spent: cancelling the jobs still running (they continue next time)")
                    for job, launch in jobs:
                        if launch.name not in statuses:
                            job.cancel(check=False)
                            statuses[launch.name] = None
                    break
                for job, launch in jobs:
                    if launch.name not in statuses and job.done():
                        try:
                            statuses[launch.name] = job.result()
                        except Exception as exc:  # the job itself failed (node lost, cancelled by hand)
                            with open(launch.log_file, "a", encoding="utf-8") as log:
                                log.write(f"dd-harness: error: submitit: {str(exc).splitlines()[0]}\n")
                            statuses[launch.name] = 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            for job, launch in jobs:
                if launch.name not in statuses:
                    job.cancel(check=False)
            raise
        return statuses
