"""MCT's matcher: start and target are points of the convexified expert trajectory.

Experts are read from ``*.mct.safetensors`` files (``dd-harness convert --to mct``), from the
public MCT code's waypoint/step files, or from raw MTT replay buffers, which are convexified on
the fly in memory (with a log line saying so). Optionally the student trains on soft labels:
the softmax of the expert at ``label_epoch`` (default ``max_start_epoch``) on the current
synthetic images, recomputed every iteration as in the public code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mct_plugin.harness.api import PooledMatcher

from .convexified import ConvexifiedTrajectory
from .readers import REPLAY_BUFFERS, ExpertReader, Expected, reader_of_folder


class MCTMatcher(PooledMatcher):
    """Options: :class:`~.options.MatcherOptions` (declared with the matcher in the plugin module)."""

    default_sampler = "continuous"
    # An exact gradient (the default "auto": unrolled, or checkpointed where unrolled would not fit):
    # benchmarks/mct_study.py measured it ahead of the public code's first-order gradient (kept by
    # the official recipes mct/cifar10-ipc*) on every seed.

    def _opened(self) -> tuple[ExpertReader, list[Path]]:
        """The reader of the folder that :meth:`open` found the experts in, and the files the run
        reads (none before :meth:`open`)."""
        if self.directory is None:
            return REPLAY_BUFFERS, []
        return reader_of_folder(self.directory) or REPLAY_BUFFERS, self.source_files()

    def recorded_options(self) -> dict:
        """The conversion of already-converted files (the requested options do not apply to them)."""
        reader, files = self._opened()
        return reader.conversion(files[0]) if files else {}

    def training_of(self, path: Path) -> dict | None:
        """MCT files carry their source buffer's record, raw MTT buffers have theirs beside them,
        public MCT files have none."""
        reader, _ = self._opened()
        return reader.training(path)

    def has_experts(self, directory: Path) -> bool:
        return reader_of_folder(directory) is not None

    def sources(self, directory: Path):
        reader = reader_of_folder(directory) or REPLAY_BUFFERS
        files = reader.files(directory)
        asked = self.config.plugin_options  # only the options given (recipe, --config, command line)
        note = reader.conversion_note(directory, files, self.options, asked) if files else None
        if note:
            self.report(f"{self.name}: {note}")
        c = self.config
        expected = Expected(self.model.shapes, self.model.names, c.dataset, c.model)
        return files, lambda path: reader.load(path, expected, self.options).trajectories, reader.description

    def epochs_of(self, expert: ConvexifiedTrajectory) -> int:
        return expert.num_epochs

    def point(self, trajectory: ConvexifiedTrajectory, epoch: float) -> torch.Tensor:
        return trajectory.flat_point_at(epoch)

    # soft labels -----------------------------------------------------------------------
    def _label_epoch(self) -> float:
        epoch = self.options.label_epoch if self.options.label_epoch is not None else self.config.max_start_epoch
        return min(float(epoch), float(self.num_epochs))

    def _soft_labels(self, trajectory: ConvexifiedTrajectory, images: torch.Tensor) -> torch.Tensor:
        theta = trajectory.flat_point_at(self._label_epoch()).to(self.model.device)
        module = self.model.module
        was_training = module.training
        module.eval()  # the expert labels as a trained network would (as the public code does)
        try:
            with torch.no_grad():
                return torch.softmax(self.model(theta, images.detach()), dim=1)
        finally:
            module.train(was_training)

    def labels(self, trajectory, synthetic) -> torch.Tensor:
        if not self.options.teacher_label:
            return synthetic.labels
        return self._soft_labels(trajectory, synthetic.images)

    def final_labels(self, synthetic) -> torch.Tensor:
        if not self.options.teacher_label:
            return synthetic.labels
        trajectory = self.last or self.pool.peek_first()
        return self._soft_labels(trajectory, synthetic.images)
