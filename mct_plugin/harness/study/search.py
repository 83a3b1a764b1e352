"""Hyper-parameter search (Optuna) on a validation split: a study file's ``search`` section.

::

    search:
      arm: mct                    # the arm whose options the trials start from
      trials: 40                  # and/or hours: 2.0
      sampler: tpe                # tpe (default) or random
      pruner: median              # median (default), hyperband or none
      seed: 0                     # the sampler's
      validation: {size: 5000, seed: 0}
      storage: null               # default sqlite:///STUDY/search.db; any Optuna storage URL
      space:
        lr_img: {log: [100, 10000]}
        lr_lr: {log: [1.0e-7, 1.0e-4]}
        syn_steps: {int: [10, 60]}
        smooth: {choice: [none, public]}
        expert_epochs: {uniform: [1, 4]}   # bounds may be left out where the option declares them
      enqueue:                    # optional: points tried first, e.g. today's recipe
        - {lr_img: 1000, lr_lr: 1.0e-5, syn_steps: 20, smooth: public, expert_epochs: 2}

Every trial is an ordinary distillation job of the study (keyed by its options like every job,
so a trial interrupted with its runner continues from its checkpoint), on experts trained without
the validation images, with ``--validation SIZE --validation-seed SEED``: its periodic
evaluations score the validation split (reported to Optuna, which prunes), and the test split is
never read. The best trial is exported as a versioned recipe (``STUDY/search/NAME/best-recipe.yaml``,
accepted by ``distill --recipe FILE``) with its provenance: the file, the trial, its validation
score and the split. Scoring it on the test set is a study arm like any other (``recipe:`` the
exported file, without ``validation``).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..config import ExpertConfig
from ..errors import ConfigError
from ..io.atomic import atomic_write_text, ensure_directory
from ..io.locks import OutputLock, is_locked
from ..io.metric_names import EVALUATION
from ..options import fields_of, key
from ..recipes import Recipe
from .executors import child_setup, thread_environment
from .jobs import Expansion, Job
from .runner import Study
from .state import is_done

KINDS_OF_RANGE = ("log", "uniform", "int", "choice")
SEARCH_KEYS = ("arm", "trials", "hours", "sampler", "pruner", "seed", "validation", "storage", "space", "enqueue")


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str
    values: tuple

    def distribution(self):
        import optuna

        if self.kind == "choice":
            return optuna.distributions.CategoricalDistribution(list(self.values))
        low, high = self.values
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(low), int(high))
        return optuna.distributions.FloatDistribution(float(low), float(high), log=self.kind == "log")


@dataclass(frozen=True)
class SearchSpec:
    arm: str
    space: tuple[Dimension, ...]
    validation_size: int
    validation_seed: int = 0
    trials: int | None = None
    hours: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    storage: str | None = None
    enqueue: tuple[Mapping[str, Any], ...] = ()


def declared_range(config_cls: type, name: str) -> tuple[float, float] | None:
    """The ``minimum``/``maximum`` an option declares, where it declares both."""
    meta = fields_of(config_cls).get(name)
    if meta is None:
        return None
    low, high = meta.metadata.get("minimum"), meta.metadata.get("maximum")
    return (low, high) if low is not None and high is not None else None


def read_search(study: Study) -> SearchSpec:
    """The study's ``search`` section, checked (one line naming the file and the key)."""
    from ..config import DistillConfig

    spec = study.spec
    body = dict(spec.search or {})
    where = lambda *keys: spec.where("search", *keys)  # noqa: E731
    unknown = [k for k in body if k not in SEARCH_KEYS]
    if unknown:
        raise ConfigError(f"{where()}: unknown key '{unknown[0]}' (known: {', '.join(SEARCH_KEYS)})")
    arm = body.get("arm")
    if arm not in spec.arms:
        raise ConfigError(f"{where('arm')}: unknown arm '{arm}' (arms: {', '.join(spec.arms)})")
    if body.get("trials") is None and body.get("hours") is None:
        raise ConfigError(f"{where()}: give 'trials', 'hours' or both")
    for name, choices in (("sampler", ("tpe", "random")), ("pruner", ("median", "hyperband", "none"))):
        if body.get(name, choices[0]) not in choices:
            raise ConfigError(f"{where(name)}: '{body[name]}' is not one of {', '.join(choices)}")
    validation = body.get("validation") or {}
    if not isinstance(validation, Mapping) or not isinstance(validation.get("size"), int) or validation["size"] < 1:
        raise ConfigError(f"{where('validation')}: needs size (images held out of the training set, > 0) and "
                          f"optionally seed; the test split is never used to choose")
    space = []
    for name, body_range in (body.get("space") or {}).items():
        here = where("space", str(name))
        if not isinstance(body_range, Mapping) or len(body_range) != 1 or next(iter(body_range)) not in KINDS_OF_RANGE:
            raise ConfigError(f"{here}: must be one of {', '.join(f'{{{k}: [...]}}' for k in KINDS_OF_RANGE)}")
        kind, values = next(iter(body_range.items()))
        if values is None and kind != "choice":
            values = declared_range(DistillConfig, key(str(name)))
            if values is None:
                raise ConfigError(f"{here}: the option declares no range: give {kind}: [low, high]")
        values = tuple(values or ())
        if kind == "choice" and not values:
            raise ConfigError(f"{here}: choice needs at least one value")
        if kind != "choice":
            if len(values) != 2 or not all(isinstance(v, (int, float)) for v in values) or not values[0] < values[1]:
                raise ConfigError(f"{here}: {kind} needs [low, high] with low < high (got {list(values)})")
            if kind == "log" and values[0] <= 0:
                raise ConfigError(f"{here}: log needs low > 0 (got {values[0]})")
        space.append(Dimension(key(str(name)), kind, values))
    if not space:
        raise ConfigError(f"{where('space')}: name at least one option to search")
    enqueue = body.get("enqueue") or []
    names = {d.name for d in space}
    for index, point in enumerate(enqueue if isinstance(enqueue, list) else [enqueue]):
        if not isinstance(point, Mapping) or set(map(key, map(str, point))) - names:
            raise ConfigError(f"{where('enqueue', str(index))}: must map searched options ({', '.join(sorted(names))}) "
                              f"to values")
    return SearchSpec(arm, tuple(space), validation["size"], int(validation.get("seed", 0)), body.get("trials"),
                      body.get("hours"), body.get("sampler", "tpe"), body.get("pruner", "median"),
                      int(body.get("seed", 0)), body.get("storage"),
                      tuple({key(str(k)): v for k, v in point.items()} for point in enqueue))


def _sampler(search: SearchSpec, stored_trials: int = 0):
    """The search's sampler, seeded by its ``seed`` and the trials already stored: a search is
    reproducible, and a part that continues one draws new values rather than the first part's again."""
    import optuna

    seed = search.seed + stored_trials
    return (optuna.samplers.TPESampler(seed=seed) if search.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed))


def _pruner(search: SearchSpec, iterations: int, every: int):
    import optuna

    if search.pruner == "median":
        # never at iteration 0: every trial starts from the same images, so the first evaluation
        # says how well the initial set trains at the trial's learning rate, not how it distils
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(1, every))
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, every), max_resource=iterations)
    return optuna.pruners.NopPruner()


STOPPED = "stopped"
"""What :meth:`Search._run_reporting` returns for a trial that the part's deadline stopped."""


def evaluations(job: Job, seen: int) -> list[tuple[int, float]]:
    """(iteration, validation accuracy) of the run's periodic evaluations after the first ``seen``."""
    try:
        lines = (job.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = [json.loads(line) for line in lines if line.strip()]
    points = [(r["iteration"], r[EVALUATION.mean]) for r in rows if EVALUATION.mean in r and "event" not in r]
    return points[seen:]


class Search:
    """The Optuna search of a study (see the module's docstring)."""

    def __init__(self, study: Study, report: Callable[[str], None] | None = None) -> None:
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError("dd-harness study search needs optuna: pip install 'mct_plugin[study]' (or pip install "
                              "optuna)") from None
        self.study = study
        self.spec = read_search(study)
        self.report = report or study.report
        self.folder = study.folder / "search" / study.spec.name
        self.expansion = Expansion(study.spec, study.components)

    @property
    def storage(self) -> str:
        return self.spec.storage or f"sqlite:///{self.folder / 'search.db'}"

    def trial_job(self, params: Mapping[str, Any]) -> Job:
        """The distillation job of a trial: the arm, the trial's values, the validation split."""
        arm = self.study.spec.arms[self.spec.arm]
        point = {**params, "validation": self.spec.validation_size, "validation_seed": self.spec.validation_seed}
        return self.expansion.distillation(arm, point)

    def stored(self):
        """The search's Optuna study as stored, or None before its first run (nothing is written)."""
        import optuna

        if self.spec.storage is None and not (self.folder / "search.db").is_file():
            return None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            return optuna.load_study(study_name=f"{self.study.spec.name}/{self.spec.arm}", storage=self.storage)
        except KeyError:  # a shared storage that does not hold this search yet
            return None

    def optuna_study(self):
        import optuna

        probe = self.trial_job({})
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        stored = optuna.create_study(study_name=f"{self.study.spec.name}/{self.spec.arm}", storage=self.storage,
                                     load_if_exists=True, direction="maximize",
                                     pruner=_pruner(self.spec, probe.options["iterations"], probe.options["eval_it"]))
        stored.sampler = _sampler(self.spec, len(stored.get_trials(deepcopy=False)))
        return stored

    def run(self, hours: float | None = None, threads: int = 2) -> Any:
        """Run trials until ``trials`` are finished (complete or pruned) or the time is spent;
        export the best trial's recipe. A trial interrupted by a previous runner is run again
        with the same values (its job continues from its checkpoint)."""
        from optuna.trial import TrialState

        limit = min(h for h in (hours, self.spec.hours, math.inf) if h is not None)
        deadline = time.time() + 3600 * limit if limit != math.inf else math.inf
        with OutputLock(ensure_directory(self.folder), "dd-harness study search"):
            optuna_study = self.optuna_study()
            for stale in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                optuna_study.tell(stale.number, state=TrialState.FAIL)
                optuna_study.enqueue_trial(stale.params, skip_if_exists=False)
            if not optuna_study.get_trials(deepcopy=False):  # a new search: its given points first
                for point in self.spec.enqueue:
                    optuna_study.enqueue_trial(dict(point))
            distributions = {d.name: d.distribution() for d in self.spec.space}
            self.train_experts(threads)  # before the first trial: a trial's time is its own
            try:
                while time.time() < deadline:
                    finished = optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                    if self.spec.trials is not None and len(finished) >= self.spec.trials:
                        break
                    trial = optuna_study.ask(distributions)
                    self.run_trial(optuna_study, trial, deadline, threads)
            finally:  # interrupted too (SIGINT, SIGTERM): the best so far as a recipe, and the plots
                if self.export(optuna_study) is not None:
                    self.plot(optuna_study)
        return optuna_study

    def train_experts(self, threads: int) -> None:
        """Train the experts of the trials (or wait for another search of the folder to)."""
        self.trial_job({})
        experts = [j for j in self.expansion.jobs.values() if j.kind == "experts"]
        self.study.write_options(experts)
        for job in experts:
            if not is_done(job):
                self._run_to_end(job, threads)

    def run_trial(self, optuna_study, trial, deadline: float, threads: int) -> None:
        job = self.trial_job(trial.params)
        self.study.write_options([job])
        self.train_experts(threads)
        trial.set_user_attr("job", job.name)
        trial.set_user_attr("threads", threads)  # its CPU time: wall time x threads
        if not is_done(job):
            with OutputLock(ensure_directory(job.folder), f"dd-harness study search {self.study.spec.path}"):
                state = self._run_reporting(job, trial, deadline, threads)  # `study status` shows it running
            if state is STOPPED:  # the same values again first in the next part, from the job's checkpoint
                from optuna.trial import TrialState

                optuna_study.tell(trial, state=TrialState.FAIL)
                optuna_study.enqueue_trial(trial.params, skip_if_exists=False)
                self.report(f"trial {trial.number}: stopped by the part's deadline; the next part continues it")
                return
            if state is not None:
                optuna_study.tell(trial, state=state)
                self.report(f"trial {trial.number}: {state.name.lower()} {trial.params}")
                return
        else:
            for iteration, value in evaluations(job, 0):
                trial.report(value, iteration)
        summary = json.loads((job.run_dir / "run_summary.json").read_text(encoding="utf-8"))
        value = summary["final"]["mean"]
        optuna_study.tell(trial, value)
        self.report(f"trial {trial.number}: validation accuracy {100 * value:.2f}% {trial.params}")

    def _popen(self, job: Job, threads: int) -> subprocess.Popen:
        ensure_directory(job.folder)
        log = open(job.log_file, "ab")
        proc = subprocess.Popen(job.command(), stdout=log,
                                stderr=subprocess.STDOUT, env=thread_environment(threads), start_new_session=True,
                                preexec_fn=child_setup)
        log.close()
        return proc

    def _run_to_end(self, job: Job, threads: int) -> None:
        """Run ``job`` (the experts) to its end, or wait for the process that runs it: two searches
        of one study folder (e.g. of two arms) share its experts."""
        while is_locked(job.folder):
            time.sleep(5)
        if is_done(job):
            return
        with OutputLock(job.folder, f"dd-harness study search {self.study.spec.path}"):
            if self._popen(job, threads).wait() != 0 or not is_done(job):
                raise ConfigError(f"the search's {job.kind} job failed: see {job.log_file}")

    def _run_reporting(self, job: Job, trial, deadline: float, threads: int):
        """Run the trial's job, reporting each evaluation; stop it where Optuna prunes or the time
        is spent. Returns the trial's state when it did not complete (pruned, failed, or
        :data:`STOPPED` by the deadline), else None."""
        from optuna.trial import TrialState

        proc = self._popen(job, threads)
        seen = 0
        while True:
            done = proc.poll() is not None
            for iteration, value in evaluations(job, seen):
                seen += 1
                trial.report(value, iteration)
                if trial.should_prune():
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
                        proc.wait()
                    return TrialState.PRUNED
            if done:
                return None if proc.returncode == 0 and is_done(job) else TrialState.FAIL
            if time.time() >= deadline:
                proc.send_signal(signal.SIGINT)  # checkpointed: the next part continues it
                proc.wait()
                return STOPPED
            time.sleep(0.5)

    def summary(self, optuna_study) -> str:
        """Lines: trials complete / pruned / failed, the compute pruning saved (iterations run against
        as many unpruned trials), the best trial, where the recipe and the plots are."""
        from optuna.trial import TrialState

        trials = optuna_study.get_trials(deepcopy=False)
        count = {state: sum(t.state == state for t in trials) for state in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                             TrialState.FAIL, TrialState.RUNNING)}
        ran = sum(max(t.intermediate_values, default=0) for t in trials
                  if t.state in (TrialState.COMPLETE, TrialState.PRUNED))
        full = self.trial_job({}).options["iterations"] * (count[TrialState.COMPLETE] + count[TrialState.PRUNED])
        lines = [f"{self.study.spec.name}: {count[TrialState.COMPLETE]} complete, {count[TrialState.PRUNED]} pruned, "
                 f"{count[TrialState.FAIL]} failed"
                 + (f", {count[TrialState.RUNNING]} running" if count[TrialState.RUNNING] else "")
                 + f" trials; iterations run: {ran} of {full} without pruning"
                 + (f" ({100 * ran / full:.0f}%)" if full else "")]
        try:
            best = optuna_study.best_trial
            lines.append(f"best: trial {best.number}, validation accuracy {100 * best.value:.2f}%, {best.params}")
            lines.append(f"recipe: {self.folder / 'best-recipe.yaml'}; plots: {self.folder}")
        except ValueError:
            lines.append("no trial completed yet")
        return "\n".join(lines)

    def plot(self, optuna_study) -> None:
        """``history.png`` (Optuna's optimisation history) and, with two or more complete trials,
        ``importances.png`` (its parameter importances)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as optuna_plots

        from ..io.atomic import atomic_path

        plots = [("history.png", optuna_plots.plot_optimization_history)]
        if sum(t.value is not None for t in optuna_study.get_trials(deepcopy=False)) >= 2 and len(self.spec.space) > 1:
            plots.append(("importances.png", optuna_plots.plot_param_importances))
        for name, draw in plots:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore")
                ax = draw(optuna_study)
            with atomic_path(self.folder / name) as tmp:
                ax.figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
            plt.close(ax.figure)

    def experts_block(self, job: Job) -> dict[str, Any]:
        """The recipe's ``experts`` section: the trial's experts (validation split included) where
        they differ from ``dd-harness experts``' defaults, so that the recipe names its buffers
        and a study arm scoring it finds the search's experts."""
        experts = self.expansion.jobs[job.needs[0]].options
        defaults = ExpertConfig().to_dict()
        where = {"buffer_path", "data_path", "device", "download", "track", "plugin_options", *Recipe.SHARED_WITH_EXPERTS}
        return {k: v for k, v in experts.items()
                if k in ExpertConfig.SPLIT_OPTIONS or (k not in where and v != defaults.get(k))}

    def export(self, optuna_study) -> Path | None:
        """Write the best trial as a recipe (``search/NAME/best-recipe.yaml``), versioned by its trial
        number, with the provenance; None before any trial completed."""
        import yaml

        try:
            best = optuna_study.best_trial
        except ValueError:
            return None
        job = self.trial_job(best.params)
        options = {k: v for k, v in job.options.items()
                   if k not in ("out", "buffer_path", "data_path", "validation", "validation_seed", "recipe",
                                "recipe_version", "plugin_options")}
        options.update(job.options.get("plugin_options") or {})
        recipe = {"name": f"{self.study.spec.name}/{self.spec.arm}-tuned", "version": best.number + 1,
                  "description": f"the best trial of the search of {self.study.spec.path.name} (arm {self.spec.arm})",
                  "source": (f"{self.study.spec.path}: trial {best.number}, validation accuracy "
                             f"{100 * best.value:.2f}% on a class-balanced split of {self.spec.validation_size} "
                             f"training images (seed {self.spec.validation_seed}); storage {self.storage}"),
                  "notes": "searched: " + ", ".join(f"{k}={v}" for k, v in best.params.items()),
                  "options": options, "experts": self.experts_block(job)}
        path = self.folder / "best-recipe.yaml"
        atomic_write_text(path, yaml.safe_dump(recipe, sort_keys=False))
        self.report(f"best trial {best.number} ({100 * best.value:.2f}% on validation): {path}")
        return path
