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

from mct_plugin.harness.api import BufferFormatError, PooledMatcher, load_replay_buffer, replay_buffer_files

from .convexified import ConvexifiedTrajectory
from .format import SUFFIX, read_mct_file, read_metadata
from .public_format import load_public_pair, public_pairs


def mct_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*" + SUFFIX) if p.is_file()) if directory.is_dir() else []


class MCTMatcher(PooledMatcher):
    """Options: :class:`~.options.MatcherOptions` (declared with the matcher in the plugin module)."""

    default_sampler = "continuous"
    # An exact gradient (the default "auto": unrolled, or checkpointed where unrolled would not fit):
    # benchmarks/mct_study.py measured it ahead of the public code's first-order gradient (kept by
    # the official recipes mct/cifar10-ipc*) on every seed.

    def __init__(self, options, context) -> None:
        super().__init__(options, context)
        self.applied: dict = {}  # the conversion settings of already-converted files
        self.converted_training: dict | None = None  # what converted files say of their source's training

    def recorded_options(self) -> dict:
        return dict(self.applied)

    def recorded_training(self) -> dict | None:
        """MCT files carry their source buffer's training record; raw MTT buffers have theirs beside
        them; public MCT files have none."""
        if self.directory is not None and mct_files(self.directory):
            return self.converted_training
        return super().recorded_training()

    def _converted_with(self, settings: dict, source: str) -> None:
        """Already-converted experts keep their own conversion: record it, and say so when the
        requested options differ."""
        settings = {k: v for k, v in settings.items() if v is not None}
        requested = {k: getattr(self.options, k) for k in settings}
        self.applied = settings
        differ = {k: (requested[k], v) for k, v in settings.items() if requested[k] != v}
        if differ:
            self.report(f"mct: {source} were converted with " + ", ".join(f"{k}={v!r}" for k, (_, v) in differ.items())
                        + "; the requested " + ", ".join(f"--{k.replace('_', '-')} {r!r}" for k, (r, _) in differ.items())
                        + " do not apply to converted files (config.json records what is used)")

    def _check_metadata(self, path: Path, meta: dict) -> None:
        c = self.config
        for key, value in (("dataset", c.dataset), ("model", c.model)):
            if meta.get(key) and meta[key] != value:
                raise BufferFormatError(f"{path} holds experts of {key} {meta[key]} but --{key} is {value}")

    def has_experts(self, directory: Path) -> bool:
        return bool(mct_files(directory) or public_pairs(directory) or replay_buffer_files(directory))

    def sources(self, directory: Path):
        shapes = self.model.shapes
        if mct_files(directory):
            files = mct_files(directory)
            first = read_metadata(files[0])
            self.converted_training = first.get("training") if isinstance(first.get("training"), dict) else None
            self._converted_with({"waypoints": first.get("waypoints_requested"), "smooth": first.get("smoothing"),
                                  "waypoint_spacing": first.get("spacing"), "pacing": first.get("pacing", "distance")},
                                 f"the MCT files in {directory}")

            def load_mct(path: Path) -> list[ConvexifiedTrajectory]:
                trajectories, meta = read_mct_file(path, shapes)
                self._check_metadata(path, meta)
                return trajectories

            return files, load_mct, "file(s) of MCT files"
        if public_pairs(directory):
            pairs = dict(public_pairs(directory))

            def load_pair(path: Path) -> list[ConvexifiedTrajectory]:
                trajectories = load_public_pair(path, pairs[path])
                got = [tuple(t.shape) for t in trajectories[0].waypoints[0]]
                if got != [tuple(s) for s in shapes]:
                    raise BufferFormatError(f"{path}: parameter shapes {got} do not fit the model {shapes}")
                return trajectories

            self.report(f"mct: the public MCT files in {directory} keep their own waypoints and step sizes "
                        f"(--waypoints, --smooth, --waypoint-spacing and --pacing apply to MTT buffers only)")
            return list(pairs), load_pair, "file(s) of public MCT waypoint/step files"
        o = self.options

        def convexify(path: Path) -> list[ConvexifiedTrajectory]:
            experts = load_replay_buffer(path, shapes, self.model.names)
            return [ConvexifiedTrajectory.from_checkpoints(e, o)
                    for e in experts]

        return (replay_buffer_files(directory), convexify,
                "file(s) of MTT replay buffers, convexified on the fly in memory")

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
