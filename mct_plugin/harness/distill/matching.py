"""The plugin-facing interfaces of trajectory matching: samplers and matchers.

One distillation iteration (see :mod:`.loop`) asks the **sampler** for a :class:`Segment`
(start and target epochs on an expert trajectory) and the **matcher** for the loss of that
segment. A matcher decides where the start and target parameters come from (the recorded SGD
checkpoints, or any other representation of the expert trajectory) and which labels the student sees; the
student's rollout and its differentiation are shared (:mod:`.gradient_modes`).

The matching objective is the normalised parameter distance of MTT::

    L = ||theta_N - theta*_target||^2 / ||theta*_start - theta*_target||^2
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch

from ..augment import DifferentiableAugmentation
from ..components import ComponentContext, Components
from ..config import DistillConfig
from ..errors import BufferFormatError
from ..experts.buffers import MIN_RELATIVE_STEP, check_buffer_folder, replay_buffer_files, resolve_buffer_dir
from ..experts.metadata import read_training_record
from ..experts.pool import ExpertPool
from ..models import FunctionalModel
from ..options import NoOptions
from .gradient_modes import GradientMode, MatchResult, StudentProblem, StudentStep
from .synthetic import SyntheticSet

@dataclass(frozen=True)
class Segment:
    """A piece of an expert trajectory, in epochs (fractional for continuous samplers)."""

    start: float
    target: float


def check_segment_length(start: torch.Tensor, target: torch.Tensor, label: str, segment: Segment) -> None:
    """Refuse a segment whose start and target (nearly) coincide: the normalised loss would divide
    by ~0 and blow the synthetic images up (``MIN_RELATIVE_STEP`` of the parameter norm)."""
    length = float(torch.linalg.vector_norm((target - start).double()))
    size = float(torch.linalg.vector_norm(start.double()))
    if length <= MIN_RELATIVE_STEP * max(size, 1e-30):
        raise BufferFormatError(f"{label}: the segment from epoch {segment.start:.4g} to {segment.target:.4g} has no "
                                f"length (|target - start| = {length:.3g} for |parameters| {size:.3g}); the expert "
                                f"does not move there - remove it or use another --expert-epochs")


def normalised_distance(theta_n: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||theta_n - target||^2 / ||start - target||^2`` (MTT's loss; 0 means a perfect match)."""
    denominator = torch.sum((start - target) ** 2).clamp_min(torch.finfo(start.dtype).tiny)
    return torch.sum((theta_n - target) ** 2) / denominator


class Sampler(ABC):
    """Chooses the segment matched in each iteration; built as every component, ``cls(options,
    context)``.

    Subclasses implement :meth:`sample`; they read the run's options (``max_start_epoch``,
    ``expert_epochs``, ``iterations``) from ``self.config`` and their own from ``self.options``
    (an instance of their ``Options``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any, context: ComponentContext) -> None:
        self.options = options
        self.config: DistillConfig = context.config
        self.num_epochs: int | None = None

    def bind(self, num_epochs: int) -> None:
        """Learn the trajectory length (epochs = checkpoints - 1); raise ConfigError if unusable."""
        self.num_epochs = num_epochs

    @abstractmethod
    def sample(self, iteration: int) -> Segment:
        """The segment for ``iteration`` (0-based), drawn from torch's global generator (which the loop
        makes the run's stream while it draws, :mod:`.draws`)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass(frozen=True)
class SegmentDraw:
    """Everything random about one matched segment, drawn by the loop from the run's stream
    (:mod:`.draws`) before anything is computed: the segment, the expert trajectory (and its
    label), and every student step's minibatch and augmentation parameters."""

    segment: Segment
    trajectory: Any
    expert: str
    steps: list[StudentStep]


@dataclass
class MatchOutcome:
    """What one segment produced: the loss, the gradients, and what was matched."""

    result: MatchResult
    segment: Segment
    expert: str


class Matcher(ABC):
    """Turns a sampled segment of an expert trajectory into the student problem; built as every
    component, ``cls(options, context)``.

    Subclasses set ``default_sampler`` (and may set ``default_gradient_mode``, used when
    ``--gradient-mode`` is not given) and implement :meth:`open`, :meth:`next_trajectory` and
    :meth:`point`; :meth:`labels` can be overridden for soft labels. The loop draws every segment
    of an iteration first (:meth:`next_trajectory`, from the run's stream), then calls :meth:`match`
    once per segment. ``self.options`` holds the matcher's own options (its ``Options``); the
    context gives the run's config, the student network, the report function and the run's
    registries (datasets and models, e.g. to check a buffer folder).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    default_sampler: ClassVar[str]
    default_gradient_mode: ClassVar[str] = "auto"

    def __init__(self, options: Any, context: ComponentContext) -> None:
        self.options = options
        self.config: DistillConfig = context.config
        self.model: FunctionalModel = context.model
        self.report: Callable[[str], None] = context.report
        self.components: Components = context.components
        self.num_epochs: int = 0

    @abstractmethod
    def open(self, buffer_path: Path) -> None:
        """Find and validate the experts under ``buffer_path``; set ``self.num_epochs``.

        :raises HarnessError: no usable experts (the message names the searched paths/files).
        """

    @abstractmethod
    def next_trajectory(self) -> tuple[Any, str]:
        """The expert trajectory for this iteration and a label naming it."""

    @abstractmethod
    def point(self, trajectory: Any, epoch: float) -> torch.Tensor:
        """Flat parameters of ``trajectory`` at ``epoch`` (float32, no gradient)."""

    def labels(self, trajectory: Any, synthetic: SyntheticSet) -> torch.Tensor:
        """Labels the student trains on (default: the synthetic set's hard labels)."""
        return synthetic.labels

    def final_labels(self, synthetic: SyntheticSet) -> torch.Tensor:
        """Labels saved with the distilled images (default: the hard labels)."""
        return synthetic.labels

    def source_files(self) -> list[Path]:
        """The expert files the run reads (recorded in ``config.json`` and checked on ``--resume``)."""
        return []

    def recorded_options(self) -> dict:
        """Plugin option values as the matcher actually applies them (recorded in ``config.json``
        instead of the requested ones, e.g. the settings of already-converted files)."""
        return {}

    def training_of(self, path: Path) -> dict | None:
        """The ``dd-harness experts`` options that the expert file ``path`` (one of
        :meth:`source_files`) records its experts were trained with; None where it records none."""
        return None

    def recorded_training(self) -> dict | None:
        """What the first source file that records its experts' training says (``distill --recipe``
        checks it against the recipe); None where nothing is recorded."""
        return next(filter(None, map(self.training_of, self.source_files())), None)

    def objective(self, start: torch.Tensor, target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda theta_n: normalised_distance(theta_n, start, target)

    def match(self, draw: SegmentDraw, synthetic: SyntheticSet, gradient_mode: GradientMode,
              augment: DifferentiableAugmentation | None) -> MatchOutcome:
        """Loss and gradients of one drawn segment (this draws nothing)."""
        segment, trajectory = draw.segment, draw.trajectory
        device = self.model.device  # trajectories stay in host memory; only two points move
        start = self.point(trajectory, segment.start).to(device)
        target = self.point(trajectory, segment.target).to(device)
        check_segment_length(start, target, draw.expert, segment)
        problem = StudentProblem(
            model=self.model, start=start, objective=self.objective(start, target),
            images=synthetic.images, labels=self.labels(trajectory, synthetic), lr=synthetic.lr,
            syn_steps=self.config.syn_steps, batch_syn=self.config.resolved_batch_syn(len(synthetic.images)),
            augment=augment, steps=draw.steps, precision=self.config.student_precision,
        )
        return MatchOutcome(gradient_mode.run(problem), segment, draw.expert)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class PooledMatcher(Matcher):
    """A matcher whose experts live in files, cycled one file in memory at a time (:class:`ExpertPool`).

    Subclasses implement :meth:`sources` (which files a folder holds and how to load one) and
    :meth:`epochs_of` (the length of one loaded expert), and may override :meth:`has_experts`
    (which folders count as holding experts, for the public ``DATASET[_NO_ZCA]/MODEL`` layout).
    ``--max-files`` keeps the first N files, ``--max-experts`` the first N experts of each file.
    """

    last: Any = None  # the expert of the latest iteration
    directory: Path | None = None  # the folder the experts were found in (set by open)

    @abstractmethod
    def sources(self, directory: Path) -> tuple[Sequence[Path], Callable[[Path], list], str]:
        """``(files, load, description)``: the expert files in ``directory`` (in order), a function
        that loads and validates one file, and how to name them in the log (``"buffer file(s)"``)."""

    @abstractmethod
    def epochs_of(self, expert: Any) -> int:
        """K for an expert spanning epochs 0..K."""

    def has_experts(self, directory: Path) -> bool:
        return bool(replay_buffer_files(directory))

    def open(self, buffer_path: Path) -> None:
        c = self.config
        datasets, models = self.components.datasets, self.components.models
        directory = resolve_buffer_dir(buffer_path, datasets.get(c.dataset).buffer_subdir(c.model, c.zca),
                                       self.has_experts)
        check_buffer_folder(directory, c.dataset, c.model, c.zca, datasets, models)
        self.directory = directory
        files, load, description = self.sources(directory)
        files = list(files)[: c.max_files or None]
        lengths = {self.epochs_of(load(path)[0]) for path in files}  # validates every file before the run starts
        if len(lengths) > 1:
            raise BufferFormatError(f"the experts in {directory} have different lengths {sorted(lengths)} (epochs)")
        self.num_epochs = lengths.pop()
        self.pool = ExpertPool(files, load, max_experts=c.max_experts)
        self.report(f"{self.name}: {len(files)} {description} in {directory}, {self.num_epochs} epochs per expert")

    def next_trajectory(self) -> tuple[Any, str]:
        self.last, label = self.pool.next()
        return self.last, label

    def source_files(self) -> list[Path]:
        return list(self.pool.files)

    def training_of(self, path: Path) -> dict | None:
        """The record beside a replay buffer (``dd-harness experts`` writes one beside every buffer;
        the public ``buffer.py`` writes none)."""
        return read_training_record(path)

    def state_dict(self) -> dict:
        return {"pool": self.pool.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
