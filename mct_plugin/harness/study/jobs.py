"""A study expanded into jobs: ordinary ``dd-harness experts | distill | eval`` runs.

Every (arm, grid point) resolves its distillation options once, with the commands' own resolution
(:func:`~mct_plugin.harness.command_options.resolve_options`), lowest first: the arm's recipe, the
study's ``options``, the arm's ``options``, the grid point. Its experts resolve the same way (the
recipe's ``experts`` block, the study's ``experts``, the arm's ``experts``; dataset, model and zca
are the distillation's, and so is its validation split where it has one). A job is keyed by the fingerprint of what it resolved to, so two arms or
grids that resolve to the same options share one job, and the experts are trained once for every
distillation that uses them. A job's folder is ``STUDY/jobs/KIND-FINGERPRINT``: its options file
(a ``--config`` file), its log and its run (``run/`` or ``buffers/``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..command_options import CommandOptions, OptionLayer, resolve_options
from ..components import Components
from ..config import DistillConfig, EvalCommandConfig, ExpertConfig
from ..errors import ConfigError, UnknownNameError
from ..recipes import find_recipe, is_recipe_file
from .spec import Arm, StudySpec

NOT_FINGERPRINTED = frozenset({"out", "report_dir", "buffer_path", "data_path", "download", "device", "track", "recipe",
                               "recipe_version"})
"""Options that say where a run reads and writes, or where its values came from, not what it computes."""

KINDS = ("experts", "distill", "eval")
"""The kinds of job, in the order they run (each needs the one before)."""


@dataclass(frozen=True)
class Label:
    """Where a job appears in the study: its arm and grid point (a job may have several)."""

    arm: str
    point: Mapping[str, Any]
    set: str | None = None

    def describe(self) -> str:
        point = " ".join(f"{k}={v}" for k, v in self.point.items())
        return " ".join(part for part in (self.arm, point, self.set and f"set={self.set}") if part)


@dataclass(frozen=True)
class Job:
    """One command of the study (see the module's docstring)."""

    kind: str
    fingerprint: str
    folder: Path
    options: Mapping[str, Any]
    labels: tuple[Label, ...] = ()
    needs: tuple[str, ...] = ()
    target: Path | None = None  # eval: the evaluated set's folder

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.fingerprint}"

    @property
    def options_file(self) -> Path:
        return self.folder / "options.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "log.txt"

    @property
    def run_dir(self) -> Path:
        """The run this job writes: the experts' buffer root, the distillation's run directory, the
        evaluation's own folder (its ``eval.json``: two studies may evaluate one set differently)."""
        return {"experts": self.folder / "buffers", "distill": self.folder / "run"}.get(self.kind, self.folder)

    def command(self) -> list[str]:
        """The ``dd-harness`` command line of the job: a distillation with a checkpoint continues it
        (``--resume``), one without starts afresh (``--overwrite``: it never finished)."""
        resume = (self.folder / "run" / "checkpoint.pt").is_file()
        cli = [sys.executable, "-m", "mct_plugin.harness.cli", "-v"]
        if self.kind == "experts":
            return [*cli, "experts", "--config", str(self.options_file), "--quiet"]
        if self.kind == "distill":
            return [*cli, "distill", "--config", str(self.options_file), "--quiet",
                    "--resume" if resume else "--overwrite"]
        return [*cli, "eval", "--run", str(self.target), "--config", str(self.options_file), "--report-dir",
                str(self.folder)]

    def describe(self) -> str:
        return "; ".join(label.describe() for label in self.labels) or self.name

    def with_label(self, label: Label) -> "Job":
        return replace(self, labels=(*self.labels, label))


def fingerprint(kind: str, values: Mapping[str, Any]) -> str:
    """12 hex digits of SHA-256 over the job's kind and its values (sorted JSON)."""
    text = json.dumps({"kind": kind, **values}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as JSON writes them (tuples become lists), so that a fingerprint does not depend on
    whether a value came from YAML or from a config."""
    return json.loads(json.dumps(dict(values), default=str))


@dataclass
class Expansion:
    """The jobs of a study by name, in the order they were first reached."""

    spec: StudySpec
    components: Components
    jobs: dict[str, Job] = field(default_factory=dict)

    def add(self, job: Job, label: Label | None) -> Job:
        known = self.jobs.get(job.name, job)
        if label is not None and label not in known.labels:
            known = known.with_label(label)
        self.jobs[job.name] = known
        return known

    def _options_of(self, command: str, config_cls: type, **kwargs) -> CommandOptions:
        return CommandOptions(command, config_cls, groups=self.components.option_groups(command), **kwargs)

    @contextmanager
    def naming(self, arm: Arm, point: Mapping[str, Any], what: str = "options"):
        """An invalid value (found once the layers are merged) named with the study file and the arm."""
        try:
            yield
        except ConfigError as exc:
            if str(self.spec.path) in str(exc):
                raise
            at = " at " + ", ".join(f"{k}={v}" for k, v in point.items()) if point else ""
            raise ConfigError(f"{self.spec.where('arms', arm.name)} ({what}{at}): {exc}") from None

    def recipe_layers(self, arm: Arm) -> tuple[list[OptionLayer], dict[str, Any]]:
        """The arm's recipe as a layer of distill options, and its experts block."""
        if arm.recipe is None:
            return [], {}
        try:
            recipe = find_recipe(self.components.recipes, arm.recipe, relative_to=self.spec.path.parent)
        except UnknownNameError as exc:
            raise ConfigError(f"{self.spec.where('arms', arm.name, 'recipe')}: {exc}") from None
        # what the job's command resolves again: a recipe file by its path (its name is registered
        # nowhere), a registered recipe by its name; the run records the name either way
        reference = str(recipe.path.resolve()) if is_recipe_file(arm.recipe) else recipe.name
        layer = OptionLayer(recipe.where, {**recipe.options, "recipe": reference, "recipe_version": recipe.version})
        return [layer], recipe.expert_options()

    def distillation(self, arm: Arm, point: Mapping[str, Any]) -> Job:
        spec = self.spec
        recipe_layers, recipe_experts = self.recipe_layers(arm)
        layers = [*recipe_layers, OptionLayer(spec.where("options"), spec.options),
                  OptionLayer(spec.where("arms", arm.name, "options"), arm.options),
                  OptionLayer(spec.where("grid"), point)]
        with self.naming(arm, point):
            config = resolve_options(self._options_of("distill", DistillConfig, absolute_paths=("data_path",)), layers)
        experts = self.experts(arm, config, recipe_experts)
        values = _plain({k: v for k, v in config.to_dict().items() if k not in NOT_FINGERPRINTED})
        key = fingerprint("distill", {**values, "experts": experts.fingerprint})
        folder = spec.folder / "jobs" / f"distill-{key}"
        options = config.replace(out=str(folder / "run"), buffer_path=str(experts.run_dir)).to_dict()
        return Job("distill", key, folder, _plain(options), needs=(experts.name,))

    def experts(self, arm: Arm, distill: DistillConfig, recipe_experts: Mapping[str, Any]) -> Job:
        spec = self.spec
        # A distillation with a validation split needs experts trained without it; one without may
        # use experts that held a split out (a searched recipe scored on the test split), where
        # the study's or the arm's `experts` say so.
        split = ExpertConfig.SPLIT_OPTIONS if distill.validation else ()
        shared = {name: getattr(distill, name) for name in ("dataset", "model", "zca", "data_path", *split)}
        layers = [OptionLayer(f"{spec.where('arms', arm.name, 'recipe')} (its experts)", recipe_experts),
                  OptionLayer(spec.where("experts"), spec.experts),
                  OptionLayer(spec.where("arms", arm.name, "experts"), arm.experts),
                  OptionLayer(f"{spec.where('arms', arm.name)} (its dataset, model and validation split)", shared)]
        with self.naming(arm, {}, "experts"):
            config = resolve_options(self._options_of("experts", ExpertConfig), layers)
        key = fingerprint("experts", {**_plain(config.training_options()), "num_experts": config.num_experts})
        folder = spec.folder / "jobs" / f"experts-{key}"
        options = config.replace(buffer_path=str(folder / "buffers")).to_dict()
        return self.add(Job("experts", key, folder, _plain(options)), Label(arm.name, {}))

    def evaluation(self, distill: Job, set_name: str) -> Job:
        evaluate = self.spec.evaluate
        # the networks' seed is the run's unless the file sets one: the same seed, the same networks in every arm
        config = resolve_options(self._options_of("eval", EvalCommandConfig),
                                 [OptionLayer(f"{self.spec.where('grid')} (the run's seed)",
                                              {"seed": distill.options["seed"]}),
                                  OptionLayer(self.spec.where("evaluate", "options"), evaluate.options)])
        values = _plain({k: v for k, v in config.to_dict().items() if k not in NOT_FINGERPRINTED})
        key = fingerprint("eval", {**values, "distill": distill.fingerprint, "set": set_name})
        target = distill.run_dir if set_name == "final" else distill.run_dir / set_name
        return Job("eval", key, self.spec.folder / "jobs" / f"eval-{key}", values, needs=(distill.name,),
                   target=target)


def expand(spec: StudySpec, components: Components) -> list[Job]:
    """Every job of ``spec``: experts first, then the distillations (seed-major: every arm gets a
    first seed before any gets a second), then their evaluations.

    :raises ConfigError: an option that a command does not have, or a value it refuses (the
        message names the file and the key it came from); an unknown recipe.
    """
    expansion = Expansion(spec, components)
    labelled: list[tuple[Label, Job]] = []
    for grid in spec.grids:
        for point in grid.points():
            for arm in (spec.arms[name] for name in (grid.arms or spec.arms)):
                label = Label(arm.name, point)
                labelled.append((label, expansion.add(expansion.distillation(arm, point), label)))
    seeds = sorted({label.point.get("seed", 0) for label, _ in labelled}, key=str)
    labelled.sort(key=lambda pair: seeds.index(pair[0].point.get("seed", 0)))
    ordered = [job for job in expansion.jobs.values() if job.kind == "experts"]
    distills = list(dict.fromkeys(job.name for _, job in labelled))
    ordered += [expansion.jobs[name] for name in distills]
    if spec.evaluate is not None:
        for name in distills:
            distill = expansion.jobs[name]
            for set_name in spec.evaluate.sets:
                job = expansion.evaluation(distill, set_name)
                for label in distill.labels:
                    job = job.with_label(Label(label.arm, label.point, set_name))
                ordered.append(job)
    return ordered
