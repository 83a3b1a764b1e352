"""The distillation loop: generic over the registered matcher, sampler and gradient mode.

Per iteration: the sampler picks a segment, the matcher returns the loss and the gradients of
the synthetic images and of alpha for that segment, and two SGD optimizers (momentum 0.5, as in
MTT) update them. The loop only orchestrates: evaluation, metrics, checkpoints and signals.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from .atomic import atomic_torch_save
from .augment import DEFAULT_STRATEGY, DifferentiableAugmentation
from .buffers import torch_load_untrusted
from . import distributed
from .data import RealDataset, load_dataset
from .devices import resolve_device
from .errors import ConfigError, HarnessError, RunDirectoryError
from .evaluate import EvalConfig, EvalResult, evaluate_set
from .gradient_modes import GRADIENT_MODES, get_gradient_mode
from .matching import Matcher, Sampler
from .models import FunctionalModel, create_model, get_model_factory
from .plots import save_image_grid, save_training_curves
from .plugins import Components, collect_components
from .rundir import CHECKPOINT, RunDirectory
from .synthetic import SyntheticSet

log = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    """Options of ``dd-harness distill`` (public MTT hyper-parameter names and defaults)."""

    dataset: str = "FashionMNIST"
    model: str = "ConvNet"
    matcher: str = ""  # a registered matcher name (required)
    sampler: str | None = None  # None: the matcher's default sampler
    gradient_mode: str = "unrolled"
    buffer_path: str = "buffers"
    out: str = "runs/distill"
    ipc: int = 1
    syn_steps: int = 20
    expert_epochs: float = 3
    max_start_epoch: float = 25
    min_start_epoch: float = 0
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01  # initial alpha, as in MTT
    batch_syn: int | None = None
    pix_init: str = "real"
    iterations: int = 5000
    eval_it: int = 500
    num_eval: int = 5
    epoch_eval_train: int = 1000
    batch_train: int = 256
    dsa: bool = True
    dsa_strategy: str = DEFAULT_STRATEGY
    zca: bool = False
    seed: int = 0
    data_path: str | None = None
    download: bool = False
    max_files: int | None = None
    max_experts: int | None = None
    checkpoint_every: int = 50
    device: str = "auto"
    plugin_options: dict[str, Any] = field(default_factory=dict)

    def resolved_batch_syn(self, num_images: int) -> int:
        return self.batch_syn or num_images

    def validate(self) -> None:
        for name in ("syn_steps", "ipc", "iterations", "num_eval", "epoch_eval_train", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.eval_it < 0:
            raise ConfigError(f"--eval-it must be >= 0 (got {self.eval_it}; 0 disables evaluation)")
        if self.batch_syn is not None and self.batch_syn < 1:
            raise ConfigError(f"--batch-syn must be at least 1 (got {self.batch_syn})")
        if self.expert_epochs <= 0:
            raise ConfigError(f"--expert-epochs must be positive (got {self.expert_epochs})")
        if self.max_start_epoch < 0 or self.min_start_epoch < 0:
            raise ConfigError("--max-start-epoch and --min-start-epoch must be >= 0")
        if self.lr_teacher <= 0:
            raise ConfigError(f"--lr-teacher (initial alpha) must be positive (got {self.lr_teacher})")
        if not self.matcher:
            raise ConfigError("choose a trajectory matcher with --matcher (see 'dd-harness plugins')")
        GRADIENT_MODES.get(self.gradient_mode)
        get_model_factory(self.model)

    def eval_config(self) -> EvalConfig:
        return EvalConfig(num_eval=self.num_eval, epoch_eval_train=self.epoch_eval_train,
                          batch_train=self.batch_train, dsa=self.dsa, dsa_strategy=self.dsa_strategy,
                          seed=self.seed)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DistillConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class DistillResult:
    run_dir: Path
    rows: list[dict]
    final_eval: EvalResult | None
    best_eval: EvalResult | None
    synthetic: SyntheticSet
    labels: torch.Tensor


class Interrupted(HarnessError):
    """SIGINT/SIGTERM arrived; a checkpoint was written and the run can be resumed."""


def eval_iterations(config: DistillConfig) -> set[int]:
    if config.eval_it == 0:
        return set()
    return set(range(0, config.iterations + 1, config.eval_it)) | {config.iterations}


@contextmanager
def _stop_requests() -> Iterator[Callable[[], int | None]]:
    """Turn SIGINT/SIGTERM into a flag checked between iterations (main thread only)."""
    received: list[int] = []

    def handler(signum, frame):
        if received:  # a second signal: stop now
            raise KeyboardInterrupt
        received.append(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not in the main thread: no signal handling
        previous = {}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])]}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class Distillation:
    """One distillation run; :meth:`run` executes it (see the module docstring)."""

    def __init__(self, config: DistillConfig, *, components: Components | None = None,
                 data: RealDataset | None = None, overwrite: bool = False, resume: bool = False,
                 show_progress: bool = True, report: Callable[[str], None] = log.info) -> None:
        config.validate()
        self.ctx = distributed.context()
        self.config, self.report, self.show_progress = config, report, show_progress and self.ctx.is_main
        self.resume = resume
        self.run_dir = RunDirectory(config.out)
        self.run_dir.check_available(overwrite=overwrite, resume=resume)
        components = components or collect_components()
        matcher_cls: type[Matcher] = components.matchers.get(config.matcher)
        sampler_name = config.sampler or matcher_cls.default_sampler
        sampler_cls: type[Sampler] = components.samplers.get(sampler_name)
        config.sampler = sampler_name

        seed_everything(config.seed)
        if data is None:
            data = load_dataset(config.dataset, config.data_path, download=config.download, zca=config.zca)
        self.device = resolve_device(config.device)
        self.data = data = data.to(self.device)
        template = create_model(config.model, data.spec.channels, data.num_classes, data.spec.image_size)
        template.to(self.device).train()
        self.model = FunctionalModel(template)
        self.matcher: Matcher = matcher_cls(config, self.model, report)
        self.matcher.open(Path(config.buffer_path))
        self.sampler: Sampler = sampler_cls(config)
        self.sampler.bind(self.matcher.num_epochs)
        self.gradient_mode = get_gradient_mode(config.gradient_mode)
        self.augment = DifferentiableAugmentation(data.spec.image_size, config.dsa_strategy).to(self.device) \
            if config.dsa else None
        self.synthetic = SyntheticSet.initialise(data, config.ipc, config.pix_init, config.lr_teacher)
        self.optimizer_img = torch.optim.SGD([self.synthetic.images], lr=config.lr_img, momentum=0.5)
        self.optimizer_lr = torch.optim.SGD([self.synthetic.lr], lr=config.lr_lr, momentum=0.5)
        # from here on each rank draws its own segments, minibatches and augmentations
        torch.manual_seed(distributed.stream_seed(config.seed, self.ctx.rank))
        self.start_iteration = 0
        self.rows: list[dict] = []
        self.best: dict | None = None
        self._warned_alpha = False
        if self.ctx.is_main:
            self.run_dir.prepare(overwrite=overwrite and not resume)
            if not resume:
                self.run_dir.write_config({**config.to_dict(), "world_size": self.ctx.world_size})
                self.run_dir.rewrite_metrics([])
        distributed.barrier()
        if resume:
            self._load_checkpoint()

    # checkpoints -----------------------------------------------------------------------
    def _rank_state(self) -> dict:
        """What differs between ranks: the sampling stream and the expert order."""
        return {"sampler": self.sampler.state_dict(), "matcher": self.matcher.state_dict(), "rng": _rng_state()}

    def save_checkpoint(self, next_iteration: int) -> None:
        """Collective: every rank contributes its state; rank 0 writes the files."""
        ranks = distributed.gather_objects(self._rank_state())
        labels = self.matcher.final_labels(self.synthetic)
        if not self.ctx.is_main:
            return
        state = {
            "format": 2, "iteration": next_iteration, "world_size": self.ctx.world_size,
            "images": self.synthetic.images.detach().clone(), "lr": self.synthetic.lr.detach().clone(),
            "optimizer_img": self.optimizer_img.state_dict(), "optimizer_lr": self.optimizer_lr.state_dict(),
            "best": self.best, "ranks": ranks,
        }
        atomic_torch_save(state, self.run_dir.file(CHECKPOINT))
        self.synthetic.save(self.run_dir.path, labels)

    def _load_checkpoint(self) -> None:
        path = self.run_dir.file(CHECKPOINT)
        state = torch_load_untrusted(path, mmap=False)
        saved = self.run_dir.read_config()
        mismatched = [k for k in ("dataset", "model", "matcher", "ipc", "syn_steps", "seed", "gradient_mode")
                      if saved.get(k) != getattr(self.config, k)]
        if mismatched:
            raise RunDirectoryError(
                f"cannot resume {self.run_dir.path}: options differ from the original run ({', '.join(mismatched)})")
        try:
            with torch.no_grad():
                self.synthetic.images.copy_(state["images"])
                self.synthetic.lr.copy_(state["lr"])
            self.optimizer_img.load_state_dict(state["optimizer_img"])
            self.optimizer_lr.load_state_dict(state["optimizer_lr"])
            self.best = state["best"]
            self.start_iteration = int(state["iteration"])
            ranks = state["ranks"]
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise RunDirectoryError(f"{path} is not a usable checkpoint ({exc})") from exc
        if len(ranks) != self.ctx.world_size:
            raise RunDirectoryError(f"cannot resume {self.run_dir.path}: it was written by {len(ranks)} process(es), "
                                    f"this run has {self.ctx.world_size}; resume with the same number of processes")
        mine = ranks[self.ctx.rank]
        self.sampler.load_state_dict(mine["sampler"])
        self.matcher.load_state_dict(mine["matcher"])
        _set_rng_state(mine["rng"])
        self.rows = [r for r in self.run_dir.read_metrics() if r["iteration"] < self.start_iteration]
        distributed.barrier()  # every rank has read the metrics before rank 0 rewrites them
        if self.ctx.is_main:
            self.run_dir.rewrite_metrics(self.rows)
        self.report(f"resuming {self.run_dir.path} at iteration {self.start_iteration}")

    # evaluation ------------------------------------------------------------------------
    def evaluate(self) -> EvalResult:
        labels = self.matcher.final_labels(self.synthetic)
        return evaluate_set(self.synthetic.images, labels, float(self.synthetic.lr.detach()), self.data,
                            self.config.model, self.config.eval_config())

    def _record_eval(self, iteration: int, row: dict) -> EvalResult:
        result = self.evaluate()
        row.update(eval_acc_mean=result.mean, eval_acc_std=result.std, eval_accs=result.accuracies)
        if self.best is None or result.mean > self.best["mean"]:
            self.best = {"iteration": iteration, "mean": result.mean, "std": result.std}
            labels = self.matcher.final_labels(self.synthetic)
            if self.ctx.is_main:
                self.synthetic.save(self.run_dir.file("best"), labels)
        return result

    # the loop --------------------------------------------------------------------------
    def step(self, iteration: int) -> dict:
        """One update of the synthetic set; returns the metrics row."""
        started = time.perf_counter()
        segment = self.sampler.sample(iteration)
        outcome = self.matcher.match(segment, self.synthetic, self.gradient_mode, self.augment)
        # several ranks: a larger meta-batch, one segment per rank, gradients averaged
        images_grad = distributed.all_reduce_mean_(outcome.result.images_grad)
        lr_grad = distributed.all_reduce_mean_(outcome.result.lr_grad.reshape(self.synthetic.lr.shape).clone())
        loss = float(distributed.all_reduce_mean_(torch.tensor([outcome.result.loss], device=self.device)))
        if not np.isfinite(loss):
            raise HarnessError(f"the matching loss became {loss} at iteration {iteration}; lower --lr-img or --lr-lr")
        self.synthetic.images.grad = images_grad
        self.synthetic.lr.grad = lr_grad
        self.optimizer_img.step()
        self.optimizer_lr.step()
        with torch.no_grad():  # a step size <= 0 would make the student (and evaluation) meaningless
            if self.synthetic.lr <= 0:
                floor = 1e-3 * self.config.lr_teacher
                if not self._warned_alpha:
                    self.report(f"alpha became {float(self.synthetic.lr):.3g} at iteration {iteration}; kept at "
                                f"{floor:.3g} (lower --lr-lr if this repeats)")
                    self._warned_alpha = True
                self.synthetic.lr.fill_(floor)
        self.optimizer_img.zero_grad(set_to_none=True)
        self.optimizer_lr.zero_grad(set_to_none=True)
        return {"iteration": iteration, "loss": loss, "start_epoch": segment.start,
                "target_epoch": segment.target, "expert": outcome.expert, "alpha": float(self.synthetic.lr.detach()),
                "seconds": time.perf_counter() - started}

    def run(self, stop_at: int | None = None) -> DistillResult:
        """Run to the end, or checkpoint and return before iteration ``stop_at`` (then ``--resume``)."""
        config = self.config
        evals = eval_iterations(config)
        final_eval = None
        if self.start_iteration > config.iterations:
            self.report(f"{self.run_dir.path} is already complete ({config.iterations} iterations)")
        bar = tqdm(total=config.iterations, initial=self.start_iteration, desc=f"distill {config.matcher}",
                   unit="it", disable=None if self.show_progress else True, dynamic_ncols=True)
        last_acc = None
        with _stop_requests() as stop_requested:
            for iteration in range(self.start_iteration, config.iterations + 1):
                if stop_at is not None and iteration >= stop_at:
                    self.save_checkpoint(iteration)
                    break
                row: dict = {"iteration": iteration}
                if iteration in evals:
                    result = self._record_eval(iteration, row)
                    last_acc = result.mean
                    if iteration == config.iterations:
                        final_eval = result
                if iteration < config.iterations:
                    row.update(self.step(iteration))
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", alpha=f"{row['alpha']:.4g}",
                                    acc="-" if last_acc is None else f"{100 * last_acc:.1f}%")
                self.rows.append(row)
                if self.ctx.is_main:
                    self.run_dir.append_metrics(row)
                finished = iteration == config.iterations
                stopping = distributed.any_rank(stop_requested() is not None)
                if finished or (iteration + 1) % config.checkpoint_every == 0 or stopping:
                    self.save_checkpoint(iteration + 1)
                if stopping and not finished:
                    bar.close()
                    raise Interrupted(
                        f"interrupted by signal {stop_requested() or '(on another rank)'} after iteration "
                        f"{iteration}; checkpoint written - continue with: dd-harness distill --resume --out "
                        f"{self.run_dir.path}")
        bar.close()
        labels = self.matcher.final_labels(self.synthetic)
        if self.ctx.is_main:
            self._write_figures(labels)
        best = None
        if self.best is not None:
            best = EvalResult(config.model, [])
            best_rows = [r for r in self.rows if r["iteration"] == self.best["iteration"]]
            best.accuracies = best_rows[0].get("eval_accs", []) if best_rows else []
        return DistillResult(self.run_dir.path, self.rows, final_eval, best, self.synthetic, labels)

    def _write_figures(self, labels: torch.Tensor) -> None:
        spec = self.data.spec
        save_image_grid(self.synthetic.images, labels, self.run_dir.file("synthetic.png"), spec.class_names,
                        () if self.config.zca else spec.mean, () if self.config.zca else spec.std)
        save_training_curves(self.rows, self.run_dir.file("curves.png"),
                             f"{self.config.matcher.upper()} on {spec.name}, ipc={self.config.ipc}")


def distill(config: DistillConfig, **kwargs) -> DistillResult:
    """Run a distillation (see :class:`Distillation` for the keyword arguments)."""
    return Distillation(config, **kwargs).run()
