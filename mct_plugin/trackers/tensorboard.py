"""``--track tensorboard``: scalars, pixel histograms, image grids and the evaluation protocol
in TensorBoard event files (torch's ``SummaryWriter``), written to ``OUT/trackers/tensorboard``
or ``--tensorboard-dir``; what is logged is listed in :mod:`mct_plugin.trackers`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mct_plugin.harness.api import ConfigError, Tracker, hookimpl, option

from . import image_grids, metrics_of_evaluation, metrics_of_iteration, protocol_text


@dataclass(frozen=True)
class TensorBoardOptions:
    tensorboard_dir: str | None = option(None, "event-file folder (default: OUT/trackers/tensorboard)", metavar="DIR")


class TensorBoardTracker(Tracker):
    name = "tensorboard"
    description = "TensorBoard event files (torch.utils.tensorboard); needs the 'tensorboard' extra"
    Options = TensorBoardOptions

    def __init__(self, options: TensorBoardOptions, context) -> None:
        super().__init__(options, context)
        run = context.run
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError("--track tensorboard needs the tensorboard package: "
                              "pip install 'mct_plugin[tensorboard]'") from exc
        folder = self.options.tensorboard_dir or Path(run.out) / "trackers" / "tensorboard"
        self.log_dir = Path(folder).expanduser()
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self.best: dict = {}  # model -> its best EvalResult so far
        self.experts = 0

    @hookimpl
    def dd_run_start(self, run):
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in vars(run.config).items()))
        protocol = protocol_text(run)
        if protocol is not None:
            self.writer.add_text("Evaluation_Protocol", protocol)

    @hookimpl
    def dd_iteration(self, run, row):
        if "loss" in row:
            for name, value in metrics_of_iteration(row).items():
                self.writer.add_scalar(name, value, row["iteration"])

    @hookimpl
    def dd_evaluation(self, run, evaluation):
        for name, value in metrics_of_evaluation(evaluation, self.best).items():
            self.writer.add_scalar(name, value, evaluation.iteration)
        self.writer.add_histogram("Pixels", evaluation.images.detach().float().cpu().nan_to_num(), evaluation.iteration)
        for name, grid in image_grids(evaluation.images).items():
            self.writer.add_image(name, grid, evaluation.iteration)

    @hookimpl
    def dd_expert_trained(self, run, expert):
        for epoch, accuracy in enumerate(expert.test_acc_per_epoch):
            self.writer.add_scalar(f"Expert_{self.experts}/test_accuracy", accuracy, epoch + 1)
        self.writer.add_scalar("Experts/final_test_accuracy", expert.final_test_acc, self.experts)
        self.experts += 1

    @hookimpl
    def dd_file_converted(self, run, row):
        self.writer.add_text("converted", " | ".join(f"{k}: {v}" for k, v in row.items()))

    @hookimpl
    def dd_run_end(self, run, status, summary):
        self.writer.add_text("status", status)
        self.writer.close()


@hookimpl
def dd_register_trackers():
    return [TensorBoardTracker]

