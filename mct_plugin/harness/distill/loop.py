"""The distillation loop: generic over the registered matcher, sampler and gradient mode.

Per iteration: every random draw is made first, from the run's own stream (:mod:`.draws`): the
sampler picks ``--meta-batch`` segments, the matcher the expert of each, and the student's
minibatches and augmentation parameters are drawn; then the matcher returns the loss and the
gradients of the synthetic images and of alpha for each segment (this process's share of them),
their mean is taken over the meta-batch, and two SGD optimizers (momentum 0.5, as in MTT) update
them. An update that would make alpha zero or negative is skipped (alpha and its
momentum keep their values from before it; the public code lets alpha go negative). The loop
only orchestrates; the pieces are built by :mod:`.factory`, checkpoints are kept by
:mod:`.checkpoint`, warnings decided by :mod:`.watch`, and progress is announced through the
lifecycle hooks (:class:`~mct_plugin.harness.events.RunEvents`), where experiment trackers listen.

At every ``--eval-it`` iteration the set is evaluated; the best-evaluated set is kept in ``best/``
and, at the first evaluation, a random real subset of the same size is trained with the same
networks (``--no-baseline`` skips it). The run ends with ``run_summary.json`` and one log line giving
the final and the best set's accuracy, each with its iteration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..components import Components
from ..config import DistillConfig
from ..data import RealDataset
from ..errors import ConfigError, DivergenceError, Interrupted, RunDirectoryError
from ..eval.protocol import EvalResult, evaluate_set, random_real_subset
from ..eval.recorded import RunSummary
from ..eval.saved_set import load_synthetic
from ..events import Evaluation, RunEvents, RunInfo
from ..io.atomic import atomic_write_json, ensure_directory
from ..experts.buffers import quick_digest
from ..io.locks import OutputLock
from ..io.metric_names import EVAL_MODELS, EVAL_SPLIT, EVALUATION, PER_MODEL, RANDOM_SUBSET
from ..io.rundir import RunDirectory
from ..eval.plots import save_image_grid, save_training_curves
from ..runtime.distributed import SINGLE_PROCESS, DistContext
from ..runtime.signals import stop_requests
from .checkpoint import FORMAT as CHECKPOINT_FORMAT, CheckpointStore, rng_state, seed_everything, set_rng_state
from .draws import RandomStream, share_of
from .factory import build_parts, run_components, with_run_defaults
from .gradient_modes import draw_steps
from .matching import SegmentDraw
from .resume import RecordedExperts, resume_changes, resumed_record
from .synthetic import SyntheticSet
from .watch import RunWatch

log = logging.getLogger(__name__)

# divergence guard: the normalised matching loss starts near 1 (0 is a perfect match); images are
# normalised (a few units; ZCA-whitened ones tens); alpha is an SGD step size (0.01 by default)
DIVERGENCE_LOSS = 1e4
DIVERGENCE_PIXELS = 1e4
DIVERGENCE_ALPHA = 1e2


@dataclass
class DistillResult:
    run_dir: Path
    rows: list[dict]
    synthetic: SyntheticSet
    labels: torch.Tensor
    summary: RunSummary  # final, best and random-subset accuracy with their iterations

    @property
    def final_eval(self) -> EvalResult | None:
        """The final set's evaluation (None: the run did not evaluate its last iteration)."""
        return self.summary.final

    @property
    def best_eval(self) -> EvalResult | None:
        """The best evaluation, whose set is kept in ``best/`` (None: no evaluation)."""
        return self.summary.best

    @property
    def random_subset(self) -> EvalResult | None:
        """The random real subset of the set's size (``--no-baseline`` or no evaluation: None)."""
        return self.summary.random_subset


def expert_files_differ(recorded: dict[str, str], files: list[Path]) -> str:
    """How ``files`` differ from the ``recorded`` names and digests, in words ("" where they do not):
    the files missing, the new ones, and those whose content changed."""
    current = {path.name: path for path in files}
    missing = sorted(set(recorded) - set(current))
    new = sorted(set(current) - set(recorded))
    changed = sorted(str(current[name]) for name in set(current) & set(recorded)
                     if quick_digest(current[name]) != recorded[name])
    parts = ([f"{', '.join(missing)} missing"] if missing else []) + \
        ([f"{', '.join(new)} not recorded"] if new else []) + \
        ([f"{', '.join(changed)} changed (its digest differs)"] if changed else [])
    if not parts:
        return ""
    return f"the run used {', '.join(sorted(recorded)) or 'no files'}; --buffer-path holds " \
           f"{', '.join(sorted(current)) or 'none'} ({'; '.join(parts)})"


def mean_of(tensors) -> torch.Tensor:
    """The mean of equally shaped tensors (a new tensor; the one tensor itself when there is one)."""
    tensors = list(tensors)
    return tensors[0].clone() if len(tensors) == 1 else torch.stack(tensors).mean(dim=0)


def best_record(best: EvalResult | None) -> dict | None:
    """The best evaluation as the checkpoint and the trackers' summary record it: ``{"iteration",
    "mean", "std"}``."""
    return None if best is None else {"iteration": best.iteration, "mean": best.mean, "std": best.std}


def eval_iterations(config: DistillConfig) -> set[int]:
    if config.eval_it == 0:
        return set()
    return set(range(0, config.iterations + 1, config.eval_it)) | {config.iterations}


class Distillation:
    """One distillation run; :meth:`run` executes it (see the module docstring).

    :param components: the registries the run builds its pieces from (``build_components()``, or
        the ones the CLI hands to its command); their plugin manager receives the lifecycle hooks.
    :param resume: continue the run in ``config.out`` (:mod:`.resume` decides which options of
        ``config`` may differ from its ``config.json``; accepted changes are recorded there). A run
        that stopped before its first checkpoint restarts from iteration 0.
    :param dist: the processes that distil together (every rank builds and runs its own
        ``Distillation``; rank 0 writes the outputs); by default this process alone.
    :param experts: the expert files that the run ``config`` comes from recorded (``distill
        --config RUN/config.json``): other files in ``buffer_path`` are refused, naming them
        (or, where it says ``accept_others``, used with a log line).

    The run directory is locked from construction until :meth:`run` returns; a caller that does
    not call ``run`` releases it with :meth:`close`, or uses the distillation as a context manager.
    """

    def __init__(self, config: DistillConfig, *, components: Components,
                 data: RealDataset | None = None, overwrite: bool = False, resume: bool = False,
                 show_progress: bool = True, report: Callable[[str], None] = log.info,
                 dist: DistContext = SINGLE_PROCESS, experts: RecordedExperts | None = None) -> None:
        self.run_dir = RunDirectory(config.out)
        if resume and overwrite:
            raise ConfigError(f"--resume continues the run in {config.out} and --overwrite replaces it: pass one "
                              f"of them")
        if resume:  # "nothing to resume" first: it explains what a missing option would not
            self.run_dir.check_available(overwrite=False, resume=True)
        config.validate()
        self.ctx = dist
        self.config, self.report, self.show_progress = config, report, show_progress and self.ctx.is_main
        self.resume = resume
        self.recorded_experts = experts
        self.last_checkpoint: int | None = None
        self._prepared = False
        # one writer per run directory, for the life of the run (rank 0 writes for all ranks)
        self.lock = OutputLock(self.run_dir.path, "dd-harness distill").acquire() if self.ctx.is_main else None
        try:
            self._set_up(components, data, overwrite)
        except BaseException:
            self._abandon()
            raise

    def _set_up(self, components: Components, data: RealDataset | None, overwrite: bool) -> None:
        config, resume = self.config, self.resume
        has_checkpoint = self.run_dir.check_available(overwrite=overwrite, resume=resume)
        self.components = components
        recorded, changes = None, {}
        if resume:
            recorded = self.run_dir.read_config()
            if not isinstance(recorded, dict):
                raise RunDirectoryError(f"{self.run_dir.file('config.json')} does not hold a mapping of options")
            if isinstance(recorded.get("gradient_mode"), str):  # a run recorded under a former name
                recorded["gradient_mode"] = components.gradient_modes.canonical(recorded["gradient_mode"])
        config = with_run_defaults(config, components, recorded, self.report)
        config = config.replace(meta_batch=config.meta_batch or self.ctx.world_size)
        if config.meta_batch % self.ctx.world_size:
            raise ConfigError(f"--meta-batch {config.meta_batch} is not a multiple of the {self.ctx.world_size} "
                              f"processes (each matches the same share of the segments)")
        if resume:  # the harness's options before anything is loaded, the plugins' once the components are built
            changes = resume_changes(self.run_dir.path, recorded, config.to_dict(),
                                     names=set(config.to_dict()) - {"plugin_options"})
        seed_everything(config.seed)
        parts = build_parts(config, components, data, self.report)
        self.config = config = config.replace(gradient_mode=parts.gradient_mode.name)  # what "auto" chose
        self.data, self.device, self.model = parts.data, parts.device, parts.model
        self.matcher, self.sampler, self.gradient_mode = parts.matcher, parts.sampler, parts.gradient_mode
        self.augment, self.synthetic = parts.augment, parts.synthetic
        self.optimizer_img, self.optimizer_lr = parts.optimizer_img, parts.optimizer_lr
        # from here on every draw of an iteration comes from the run's stream (the same on every rank)
        self.stream = RandomStream(config.seed, self.device)
        self.share = share_of(self.ctx.rank, self.ctx.world_size, config.meta_batch)
        self.checkpoints = CheckpointStore(self.run_dir, self.ctx)
        self.start_iteration = 0
        self.rows: list[dict] = []
        if not resume and self.recorded_experts is not None:
            self._check_recorded_experts(self.recorded_experts)
        if resume:
            self._check_sources_unchanged()
            changes.update(resume_changes(self.run_dir.path, recorded, self.record()))
        restart = resume and not has_checkpoint
        if restart:
            self.report(f"{self.run_dir.path} stopped before its first checkpoint: restarting it from the options "
                        f"its config.json recorded")
        if self.ctx.is_main:
            self.run_dir.prepare(overwrite=(overwrite and not resume) or restart)
            self._prepared = True
            if not resume or restart:
                self.run_dir.write_config(self.record() if not changes else resumed_record(recorded, self.record(),
                                                                                          changes, 0))
                self.run_dir.rewrite_metrics([])
        self.ctx.barrier()
        if resume and not restart:
            self._load_checkpoint()
            if changes and self.ctx.is_main:  # config.json tells the truth about the run it holds
                self.run_dir.write_config(resumed_record(recorded, self.record(), changes, self.start_iteration))
        self.watch = RunWatch(config.stall_iterations, config.stall_tolerance, self.rows,
                              alpha_frozen_iterations=config.alpha_frozen_iterations if config.lr_lr > 0 else 0)
        so_far = RunSummary.from_rows(self.rows, config.model, config.iterations)  # a resumed run's evaluations
        self.best: EvalResult | None = so_far.best
        self.random_subset: EvalResult | None = so_far.random_subset

    def record(self) -> dict:
        """What ``config.json`` holds: every resolved option (with the values the matcher actually
        uses, e.g. those of already-converted files), the same plugin options again under the
        component that reads them (``component_options``: ``{"matcher:mct": {...}, "sampler:continuous":
        {...}}``, only the components in use), the number of processes, and a digest of every expert
        file, so that ``--resume`` can tell whether the experts changed."""
        values = self.config.to_dict()
        in_use = run_components(self.config)
        plugin_options, _ = self.components.plugin_options_in_use("distill", self.config.plugin_options, in_use)
        applied = self.matcher.recorded_options()
        values["plugin_options"] = {**plugin_options, **applied}
        by_owner = self.components.options_by_owner("distill", self.config.plugin_options, in_use)
        matcher = f"matcher:{self.config.matcher}"
        if matcher in by_owner:
            by_owner[matcher].update({k: v for k, v in applied.items() if k in by_owner[matcher]})
        digests = {path.name: quick_digest(path) for path in self.matcher.source_files()}
        return {**values, "component_options": by_owner, "world_size": self.ctx.world_size, "buffer_files": digests}

    def _check_sources_unchanged(self) -> None:
        recorded = self.run_dir.read_config().get("buffer_files")
        if not isinstance(recorded, dict):
            return  # written by an earlier version: nothing to compare with
        difference = expert_files_differ(recorded, self.matcher.source_files())
        if difference:
            raise RunDirectoryError(f"cannot resume {self.run_dir.path}: {difference}")

    def _check_recorded_experts(self, recorded: RecordedExperts) -> None:
        """``distill --config`` of an earlier run: its experts are the files that run recorded."""
        difference = expert_files_differ(recorded.digests, self.matcher.source_files())
        if not difference:
            return
        if not recorded.accept_others:
            raise RunDirectoryError(f"{recorded.where} recorded other experts: {difference}; --other-experts runs "
                                    f"with the files in --buffer-path anyway")
        self.report(f"--other-experts: {difference} (not the experts {recorded.where} recorded)")

    def _abandon(self) -> None:
        """After an error: remove what a run that never reached a checkpoint wrote (so that the
        corrected command runs without --overwrite), then release the lock."""
        try:
            if self._prepared and not self.resume and self.last_checkpoint is None and self.ctx.is_main:
                self.run_dir.remove_results()
        finally:
            self.close()

    def close(self) -> None:
        """Release the run directory (done by :meth:`run`; needed only when ``run`` is never called)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> "Distillation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self, next_iteration: int) -> None:
        """Collective: every rank contributes its state; rank 0 writes the files."""
        rank_state = {"sampler": self.sampler.state_dict(), "matcher": self.matcher.state_dict(), "rng": rng_state()}
        labels = self.matcher.final_labels(self.synthetic)
        shared = {"images": self.synthetic.images.detach().clone(), "lr": self.synthetic.lr.detach().clone(),
                  "optimizer_img": self.optimizer_img.state_dict(), "optimizer_lr": self.optimizer_lr.state_dict(),
                  "best": best_record(self.best),  # a resume reads the best from metrics.jsonl
                  "stream": self.stream.state_dict()}
        if self.checkpoints.save(next_iteration, shared, rank_state):
            self.synthetic.save(self.run_dir.path, labels)
        self.last_checkpoint = next_iteration

    def _load_checkpoint(self) -> None:
        state, mine = self.checkpoints.load()
        path = self.checkpoints.path
        try:
            with torch.no_grad():
                self.synthetic.images.copy_(state["images"])
                self.synthetic.lr.copy_(state["lr"])
            if not (torch.isfinite(self.synthetic.images).all() and torch.isfinite(self.synthetic.lr).all()
                    and float(self.synthetic.lr.detach()) > 0):
                raise ValueError("its images or step size are not finite and positive")
            if state.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"it was written by another version of dd-harness (format {state.get('format')}, "
                                 f"this version continues format {CHECKPOINT_FORMAT}); start the run again")
            self.stream.load_state_dict(state["stream"])
            self.optimizer_img.load_state_dict(state["optimizer_img"])
            self.optimizer_lr.load_state_dict(state["optimizer_lr"])
            self.start_iteration = int(state["iteration"])
            self.last_checkpoint = self.start_iteration
            if self.start_iteration > self.config.iterations + 1:
                raise RunDirectoryError(f"cannot resume {self.run_dir.path} with --iterations {self.config.iterations}: "
                                        f"it has already done {self.start_iteration - 1}")
            self.sampler.load_state_dict(mine["sampler"])
            self.matcher.load_state_dict(mine["matcher"])
            set_rng_state(mine["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise RunDirectoryError(f"{path} is not a usable checkpoint ({exc})") from exc
        self.rows = [r for r in self.run_dir.read_metrics() if r["iteration"] < self.start_iteration]
        self.ctx.barrier()  # every rank has read the metrics before rank 0 rewrites them
        if self.ctx.is_main:
            self.run_dir.rewrite_metrics(self.rows)
        self.report(f"resuming {self.run_dir.path} at iteration {self.start_iteration}")

    # evaluation ------------------------------------------------------------------------
    def evaluate(self, iteration: int = 0) -> Evaluation:
        """Train fresh networks of every evaluation architecture on the current set."""
        labels = self.matcher.final_labels(self.synthetic)
        lr = float(self.synthetic.lr.detach())
        settings = self.config.eval_settings()
        results = {}
        for model in dict.fromkeys((self.config.model, *self.config.eval_models)):
            results[model] = replace(evaluate_set(self.synthetic.images, labels, lr, self.data, model, settings,
                                                  models=self.components.models, dist=self.ctx), iteration=iteration)
        return Evaluation(iteration, results, self.synthetic.images.detach().clone(), labels.detach().clone(), lr)

    def evaluate_random_subset(self) -> EvalResult:
        """A random real subset of the set's size (``ipc`` per class, drawn with the run's seed),
        trained with the evaluation protocol, the same network seeds and the initial alpha
        (``--lr-teacher``), as ``dd-harness eval`` does. Its random draws are isolated, so the
        run's other numbers do not depend on whether it is evaluated."""
        images, labels = random_real_subset(self.data, self.config.ipc, self.config.seed)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            return evaluate_set(images, labels, self.config.lr_teacher, self.data, self.config.model,
                                self.config.eval_settings(), models=self.components.models, dist=self.ctx)

    def _record_eval(self, iteration: int, row: dict, events: RunEvents) -> EvalResult:
        evaluation = self.evaluate(iteration)
        result = evaluation.main
        row[EVAL_SPLIT] = self.data.split
        row.update(result.to_row(EVALUATION))
        if len(evaluation.results) > 1:
            row[EVAL_MODELS] = {m: r.to_row(PER_MODEL) for m, r in evaluation.results.items()}
        if self.config.baseline and self.random_subset is None:
            self.random_subset = self.evaluate_random_subset()
            row.update(self.random_subset.to_row(RANDOM_SUBSET))
        if self.random_subset is not None:
            self._warn(self.watch.evaluation(iteration, result, self.random_subset))
        if result.improves_on(self.best):
            self.best = result
            if self.ctx.is_main:
                self.synthetic.save(self.run_dir.file("best"), evaluation.labels)
        if self.config.save_every_eval and self.ctx.is_main:
            self.synthetic.save(ensure_directory(self.run_dir.file("snapshots")), evaluation.labels,
                                suffix=f"_{iteration}")
        events.evaluation(evaluation)
        return result

    # the loop --------------------------------------------------------------------------
    def draw(self, iteration: int) -> list[SegmentDraw]:
        """Every random draw of ``iteration``: the meta-batch's segments, experts and student steps,
        in a fixed order, from the run's stream (every rank draws them all, and matches its share)."""
        images = self.synthetic.images
        batch_syn = self.config.resolved_batch_syn(len(images))
        with self.stream.drawing():
            draws = []
            for _ in range(self.config.meta_batch):
                segment = self.sampler.sample(iteration)
                trajectory, expert = self.matcher.next_trajectory()
                steps = draw_steps(images.shape, batch_syn, self.config.syn_steps, self.augment)
                draws.append(SegmentDraw(segment, trajectory, expert, steps))
        return draws

    def step(self, iteration: int) -> dict:
        """One update of the synthetic set; returns the metrics row."""
        started = time.perf_counter()
        draws = self.draw(iteration)
        outcomes = [self.matcher.match(draws[j], self.synthetic, self.gradient_mode, self.augment) for j in self.share]
        # the mean over the meta-batch: each rank's mean over its share, then the mean over the ranks
        images_grad = self.ctx.all_reduce_mean_(mean_of(o.result.images_grad for o in outcomes))
        lr_grad = self.ctx.all_reduce_mean_(mean_of(o.result.lr_grad.reshape(self.synthetic.lr.shape)
                                                     for o in outcomes))
        loss = float(self.ctx.all_reduce_mean_(mean_of(torch.tensor([o.result.loss], device=self.device)
                                                       for o in outcomes)))
        first = draws[0]
        if not np.isfinite(loss) or loss > DIVERGENCE_LOSS:
            where = ", ".join(f"expert {d.expert}, epochs {d.segment.start:.4g} to {d.segment.target:.4g}"
                              for d in draws)
            self._diverged(iteration, f"the matching loss became {loss:.3g} ({where})")
        if not (torch.isfinite(images_grad).all() and torch.isfinite(lr_grad).all()):
            self._diverged(iteration, "the gradient of the images or of alpha is not finite")
        self.synthetic.images.grad = images_grad
        self.synthetic.lr.grad = lr_grad
        alpha_used = self.synthetic.lr.detach().clone()
        momentum = self.optimizer_lr.state.get(self.synthetic.lr, {}).get("momentum_buffer")
        momentum = None if momentum is None else momentum.clone()
        self.optimizer_img.step()
        self.optimizer_lr.step()
        skipped = bool(self.synthetic.lr.detach() <= 0)
        if skipped:  # a step size <= 0 would make the student (and evaluation) meaningless
            self._skip_alpha_update(iteration, alpha_used, momentum)
        self.optimizer_img.zero_grad(set_to_none=True)
        self.optimizer_lr.zero_grad(set_to_none=True)
        alpha = float(self.synthetic.lr.detach())
        if not np.isfinite(alpha) or alpha > DIVERGENCE_ALPHA:
            self._diverged(iteration, f"alpha (the student step size) became {alpha:.3g}")
        largest = float(self.synthetic.images.detach().abs().max())
        if not np.isfinite(largest) or largest > DIVERGENCE_PIXELS:
            self._diverged(iteration, f"the synthetic images reached |pixel| = {largest:.3g}")
        row = {"iteration": iteration, "loss": loss, "start_epoch": first.segment.start,
               "target_epoch": first.segment.target, "expert": first.expert, "alpha_used": float(alpha_used),
               "alpha": float(self.synthetic.lr.detach()), "alpha_update_skipped": skipped}
        if len(draws) > 1:  # every segment of the meta-batch, with the process that matched it
            size = len(self.share)
            row["segments"] = [{"rank": j // size, "expert": d.expert, "start_epoch": d.segment.start,
                                "target_epoch": d.segment.target} for j, d in enumerate(draws)]
        return {**row, "seconds": time.perf_counter() - started}

    def _skip_alpha_update(self, iteration: int, alpha_used: torch.Tensor, momentum: torch.Tensor | None) -> None:
        """Undo the update of alpha: its value and its momentum return to what they were before it."""
        rejected = float(self.synthetic.lr.detach())
        with torch.no_grad():
            self.synthetic.lr.copy_(alpha_used)
        state = self.optimizer_lr.state[self.synthetic.lr]
        if momentum is None:
            state.pop("momentum_buffer", None)
        else:
            state["momentum_buffer"] = momentum
        self._warn(self.watch.alpha_rejected(iteration, rejected, float(alpha_used)))

    def _warn(self, event: dict | None) -> None:
        """Say a warning of :mod:`.watch` (once per run: ``event`` is None after the first) in the log
        and as an event row of metrics.jsonl."""
        if event is None:
            return
        self.report(f"warning: {event['message']}")
        self.rows.append(event)
        if self.ctx.is_main:
            self.run_dir.append_metrics(event)

    def _diverged(self, iteration: int, what: str) -> None:
        kept = (f"the checkpoint of iteration {self.last_checkpoint} is kept in {self.run_dir.path}"
                if self.last_checkpoint is not None else "no checkpoint was written, so nothing is kept")
        raise DivergenceError(f"the distillation diverged at iteration {iteration}: {what}; {kept}. Lower --lr-img "
                              f"or --lr-lr (limits: loss {DIVERGENCE_LOSS:g}, |pixel| {DIVERGENCE_PIXELS:g}, "
                              f"alpha {DIVERGENCE_ALPHA:g})")

    def run(self, stop_at: int | None = None) -> DistillResult:
        """Run to the end, or checkpoint and return before iteration ``stop_at`` (then ``--resume``)."""
        try:
            return self._run(stop_at)
        except BaseException:
            self._abandon()
            raise
        finally:
            self.close()

    def _run(self, stop_at: int | None) -> DistillResult:
        info = RunInfo("distill", self.config, self.run_dir.path, self.resume, self.ctx.world_size)
        with RunEvents(self.components, info, self.config.track, dist=self.ctx) as events:
            self._loop(events, stop_at)
            labels = self.matcher.final_labels(self.synthetic)
            summary = RunSummary.from_rows(self.rows, self.config.model, self.config.iterations)
            resumes_at = self.last_checkpoint if self.last_checkpoint is not None else self.start_iteration
            if self.ctx.is_main:
                self._write_figures(labels, summary, min(resumes_at, self.config.iterations))
                atomic_write_json(self.run_dir.file("run_summary.json"),
                                  {"finished": resumes_at > self.config.iterations, "model": self.config.model,
                                   **summary.as_dict(), "protocol": self.config.evaluation_protocol(),
                                   "alpha_updates_skipped": sum(bool(r.get("alpha_update_skipped"))
                                                                for r in self.rows)})
            self.report(f"{self.run_dir.path}: {summary.describe()}"
                        + (f" (on the {self.data.split} split)" if self.data.validation else ""))
            events.summary = {"final_accuracy": summary.final.mean if summary.final else None,
                              "best_accuracy": summary.best.mean if summary.best else None,
                              "best_iteration": summary.best.iteration if summary.best else None,
                              "random_subset_accuracy": summary.random_subset.mean if summary.random_subset else None,
                              "best": best_record(summary.best), "alpha": float(self.synthetic.lr.detach()),
                              "split": self.data.split}
        return DistillResult(self.run_dir.path, self.rows, self.synthetic, labels, summary)

    def _loop(self, events: RunEvents, stop_at: int | None) -> None:
        config = self.config
        evals = eval_iterations(config)
        if self.start_iteration > config.iterations:
            self.report(f"{self.run_dir.path} is already complete ({config.iterations} iterations)")
        bar = tqdm(total=config.iterations, initial=self.start_iteration, desc=f"distill {config.matcher}",
                   unit="it", disable=None if self.show_progress else True, dynamic_ncols=True)
        last_acc = None
        with stop_requests() as stop_requested:
            for iteration in range(self.start_iteration, config.iterations + 1):
                if stop_at is not None and iteration >= stop_at:
                    self.save_checkpoint(iteration)
                    break
                row: dict = {"iteration": iteration}
                if iteration in evals:
                    last_acc = self._record_eval(iteration, row, events).mean
                if iteration < config.iterations:
                    row.update(self.step(iteration))
                    self._warn(self.watch.loss(iteration, row["loss"]))
                    self._warn(self.watch.alpha(iteration, row["alpha"]))
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", alpha=f"{row['alpha']:.4g}",
                                    acc="-" if last_acc is None else f"{100 * last_acc:.1f}%")
                if len(row) > 1:  # the last iteration takes no step: its row exists only if it was evaluated
                    self.rows.append(row)
                    if self.ctx.is_main:
                        self.run_dir.append_metrics(row)
                    events.iteration(row)
                finished = iteration == config.iterations
                stopping = self.ctx.any_rank(stop_requested() is not None)
                if finished or (iteration + 1) % config.checkpoint_every == 0 or stopping:
                    self.save_checkpoint(iteration + 1)
                if stopping and not finished:
                    bar.close()
                    raise Interrupted(
                        f"interrupted by signal {stop_requested() or '(on another rank)'} after iteration "
                        f"{iteration}; checkpoint written - continue with: dd-harness distill --resume --out "
                        f"{self.run_dir.path}")
        bar.close()

    def _write_figures(self, labels: torch.Tensor, summary: RunSummary, iteration: int) -> None:
        """synthetic.png (the final set), best/synthetic.png (the best-evaluated set) and curves.png;
        every title names the set, its iteration and its accuracy."""
        spec = self.data.spec
        run = f"{self.config.matcher.upper()} on {spec.name}, ipc={self.config.ipc}"
        unnormalise = ((), ()) if self.config.zca else (spec.mean, spec.std)
        final = summary.final if summary.final is not None and summary.final.iteration == iteration else None
        save_image_grid(self.synthetic.images, labels, self.run_dir.file("synthetic.png"), spec.class_names,
                        *unnormalise, title=f"{run}\nfinal set, iteration {iteration}" + (f": {final}%" if final else ""))
        if summary.best is not None and self.run_dir.file("best").is_dir():
            images, best_labels, _ = load_synthetic(self.run_dir.file("best"))
            save_image_grid(images, best_labels, self.run_dir.file("best") / "synthetic.png", spec.class_names,
                            *unnormalise, title=f"{run}\nbest set, iteration {summary.best.iteration}: {summary.best}%")
        save_training_curves(self.rows, self.run_dir.file("curves.png"), run,
                             best_iteration=summary.best.iteration if summary.best else None)


def distill(config: DistillConfig, **kwargs) -> DistillResult:
    """Run a distillation (see :class:`Distillation` for the keyword arguments)."""
    return Distillation(config, **kwargs).run()
