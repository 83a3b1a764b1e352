"""``--track wandb``: Weights & Biases runs with the public MTT code's metric names, histograms and
image grids (listed in :mod:`mct_plugin.trackers`); the evaluation protocol is in the run's
config as ``evaluation_protocol``.

``--wandb-mode offline`` (or ``WANDB_MODE=offline``) writes the run under
``OUT/trackers/wandb`` for a later ``wandb sync``; no account or network is needed then.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mct_plugin.harness.api import ConfigError, Tracker, hookimpl, option

from . import image_grids, metrics_of_evaluation, metrics_of_iteration, protocol_text


@dataclass(frozen=True)
class WandbOptions:
    wandb_project: str | None = option(None, "project (default: Distill_<dataset>_<ipc>, as the public code)")
    wandb_mode: str | None = option(None, "online, offline or disabled (default: wandb's, i.e. WANDB_MODE)",
                                    choices=("online", "offline", "disabled"))
    wandb_name: str | None = option(None, "run name (default: wandb's)")


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


class WandbTracker(Tracker):
    name = "wandb"
    description = "Weights & Biases (online or offline); needs the 'wandb' extra"
    Options = WandbOptions

    def __init__(self, options: WandbOptions, context) -> None:
        super().__init__(options, context)
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError("--track wandb needs the wandb package: pip install 'mct_plugin[wandb]'") from exc
        self.wandb = wandb
        self.best: dict = {}  # model -> its best EvalResult so far
        self.experts = 0
        self.run_handle = None

    @hookimpl
    def dd_run_start(self, run):
        options = self.options
        config = {k: _plain(v) for k, v in dataclasses.asdict(run.config).items()}
        protocol = protocol_text(run)
        if protocol is not None:
            config["evaluation_protocol"] = protocol
        project = options.wandb_project or (
            f"Distill_{config.get('dataset')}_{config.get('ipc')}" if run.command == "distill" else f"dd-harness-{run.command}")
        folder = Path(run.out) / "trackers"
        folder.mkdir(parents=True, exist_ok=True)
        self.run_handle = self.wandb.init(project=project, name=options.wandb_name, config=config,
                                          dir=str(folder), mode=options.wandb_mode, job_type=run.command,
                                          reinit="finish_previous")

    @hookimpl
    def dd_iteration(self, run, row):
        if "loss" in row:
            self.run_handle.log(metrics_of_iteration(row), step=row["iteration"])

    @hookimpl
    def dd_evaluation(self, run, evaluation):
        values = metrics_of_evaluation(evaluation, self.best)
        values["Pixels"] = self.wandb.Histogram(evaluation.images.detach().float().cpu().nan_to_num().numpy())
        for name, grid in image_grids(evaluation.images).items():
            values[name] = self.wandb.Image(grid.permute(1, 2, 0).numpy())
        self.run_handle.log(values, step=evaluation.iteration)

    @hookimpl
    def dd_expert_trained(self, run, expert):
        self.run_handle.log({"Expert/final_test_accuracy": expert.final_test_acc, "Expert/index": self.experts})
        self.experts += 1

    @hookimpl
    def dd_file_converted(self, run, row):
        self.run_handle.log({"Converted/files": 1})

    @hookimpl
    def dd_run_end(self, run, status, summary):
        if self.run_handle is not None:
            for key, value in summary.items():
                if isinstance(value, (int, float)):
                    self.run_handle.summary[key] = value
            self.run_handle.finish(exit_code=0 if status == "finished" else 1)


@hookimpl
def dd_register_trackers():
    return [WandbTracker]

