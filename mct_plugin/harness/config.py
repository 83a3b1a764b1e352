"""The typed configurations of the harness's commands (public MTT names and defaults).

Each field is declared once with :func:`~.options.option`: its type, default, valid range and help
text. The command line, ``--config`` files, plugin recipes and a run's ``config.json`` are all
generated from (and validated by) these classes; see :mod:`.options`. Groups that several commands
share are declared once and composed by inheritance: :class:`DataOptions`, :class:`EvalOptions`
(the evaluation protocol), :class:`RunOptions` (seed, device, trackers). Configs are frozen:
``config.replace(name=value)`` makes a changed copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigError
from .options import MAX_INT, from_mapping, option, validate_fields
from .runtime.precision import FP32, PRECISION_HELP, PRECISIONS

if TYPE_CHECKING:
    from ._registry import Registry

DEFAULT_DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
"""The DSA families of the public code's default ``--dsa_strategy``, joined by '_' (the
configs' default and the augmentation's)."""


TEST_SPLIT = "test"
"""What evaluations score without a validation split."""


def split_description(validation: int, seed: int) -> str:
    """What evaluations score, as every record of a score says it: ``test``, or for ``--validation
    K`` ``validation (K=500, seed=0)``."""
    return f"validation (K={validation}, seed={seed})" if validation else TEST_SPLIT


class Config:
    """Shared behaviour of the (frozen) config dataclasses: validation, dict round trip, changed copies."""

    def validate(self) -> None:
        """Field checks (types, finiteness, ranges); subclasses add cross-field checks."""
        validate_fields(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = ""):
        """An instance from a mapping (e.g. ``config.json``): known keys coerced and validated."""
        return from_mapping(cls, values, where)

    def replace(self, **changes):
        """A copy with ``changes`` (configs are frozen)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataOptions(Config):
    """Which dataset, from where."""

    dataset: str = option("FashionMNIST", "dataset name (see 'dd-harness data')")
    data_path: str | None = option(None, "folder with the dataset files (default: the Debian Fashion-MNIST package, "
                                         "then the cache)", metavar="DIR")
    download: bool = option(False, "download the dataset with torchvision if it is missing")
    zca: bool = option(False, "ZCA-whiten the images (kornia, eps 0.1)")
    validation: int = option(0, "hold out K class-balanced training images (K // classes per class, chosen by "
                                "--validation-seed) from everything else (experts, initial images, random "
                                "subsets, full data) and score every evaluation on them instead of the test split, "
                                "which is then never read (0: no split, evaluations score the test split)",
                             minimum=0, maximum=MAX_INT, metavar="K")
    validation_seed: int = option(0, "which training images --validation K holds out", minimum=0, maximum=MAX_INT,
                                  metavar="S")

    def scored_split(self) -> str:
        """What evaluations with these options score (:func:`split_description`)."""
        return split_description(self.validation, self.validation_seed)


@dataclass(frozen=True)
class DeviceOption(Config):
    device: str = option("auto", "auto (CUDA if available), cpu, cuda or cuda:N")


@dataclass(frozen=True)
class RunOptions(DeviceOption):
    """Seed, device and experiment trackers: the options of every command that runs an experiment."""

    seed: int = option(0, "random seed", minimum=0, maximum=MAX_INT)
    track: tuple[str, ...] = option((), "experiment trackers, comma-separated (see 'dd-harness plugins')")


@dataclass(frozen=True)
class EvalOptions(Config):
    """How a synthetic set is evaluated (public ``evaluate_synset``): ``distill`` records these, and
    ``dd-harness eval`` trains with them."""

    num_eval: int = option(5, "networks trained per evaluation", minimum=1, maximum=1000)
    epoch_eval_train: int = option(1000, "training epochs of every evaluation network (public: 1000)", minimum=1,
                                   maximum=100_000)
    batch_train: int = option(256, "minibatch of the evaluation networks", minimum=1)
    dsa: bool = option(True, "differentiable augmentation (DSA) of the synthetic images, in the student's steps and "
                             "when evaluation networks train on them", negative="--no-dsa",
                       negative_help="do not augment the synthetic images: no DSA in the student's steps nor when "
                                     "evaluation networks train on them")
    dsa_strategy: str = option(DEFAULT_DSA_STRATEGY, "DSA families joined by '_'", metavar="STRATEGY")
    eval_precision: str = option(FP32, "precision of the evaluation networks (on the synthetic set, the random real "
                                       "subset and the full data): " + PRECISION_HELP, choices=PRECISIONS)


@dataclass(frozen=True)
class EvalSettings(EvalOptions):
    """The evaluation protocol: fresh networks trained on a set (the options, the SGD settings of the
    public code and the seed of the networks)."""

    momentum: float = option(0.9, "SGD momentum of the evaluation networks", minimum=0, maximum=1, cli=False)
    weight_decay: float = option(5e-4, "weight decay of the evaluation networks", minimum=0, cli=False)
    seed: int = option(0, "random seed", minimum=0, maximum=MAX_INT)

    def description(self, models: tuple[str, ...] | list[str], lr: float | str, split: str) -> dict:
        """The protocol as plain values (what ``eval.json`` records and trackers show as text): the
        ``split`` the networks are scored on (``test``, or ``validation (K=..., seed=...)``),
        networks, architectures, epochs, the step size ``lr`` and its schedule, batch, SGD
        settings, augmentation, seed and precision."""
        decay_after = self.epoch_eval_train // 2 + 1  # the schedule of eval.protocol.learning_rate_schedule
        return {"split": split, "networks": self.num_eval, "models": list(models), "epochs": self.epoch_eval_train,
                "lr": lr,
                "lr_schedule": f"{self.epoch_eval_train + 1} passes over the set, lr x0.1 after pass {decay_after}",
                "batch": self.batch_train, "optimizer": "SGD", "momentum": self.momentum,
                "weight_decay": self.weight_decay,
                "augmentation": f"DSA {self.dsa_strategy}" if self.dsa else "none", "seed": self.seed,
                "precision": self.eval_precision}


@dataclass(frozen=True)
class ExpertConfig(RunOptions, DataOptions):
    """Options of ``dd-harness experts`` (public MTT ``buffer.py`` names and defaults)."""

    model: str = option("ConvNet", "model name (see 'dd-harness models')")
    num_experts: int = option(10, "experts to train", minimum=1, maximum=1_000_000)
    train_epochs: int = option(50, "epochs per expert (E epochs give E+1 checkpoints)", minimum=1, maximum=100_000)
    buffer_path: str = option("buffers", "root folder of the buffers", metavar="DIR")
    lr_teacher: float = option(0.01, "SGD learning rate of the experts", above=0)
    batch_train: int = option(256, "minibatch of the experts", minimum=1)
    momentum: float = option(0.0, "SGD momentum of the experts", minimum=0, maximum=1)
    weight_decay: float = option(0.0, "weight decay of the experts", minimum=0)
    lr_decay: bool = option(False, "x0.1 learning rate after half the epochs (public --decay)")
    subset: int | None = option(None, "train on K class-balanced real images (quick runs)", minimum=1, metavar="K")
    save_interval: int = option(10, "experts per replay_buffer file", minimum=1)
    augmentation: str = option("crop_scale_rotate", "real-data augmentation: crop_scale_rotate, dsa or none")
    precision: str = option(FP32, "precision of the experts' training: " + PRECISION_HELP, choices=PRECISIONS)
    add: bool = option(False, "train --num-experts more experts, with fresh seeds, into a folder that already holds "
                              "experts (of the same settings, or without a training record); without it the folder "
                              "must hold no experts or exactly --num-experts of these settings (then nothing is done)")
    plugin_options: dict[str, Any] = option({}, "values of the options that plugins define", cli=False)

    FINGERPRINT_EXCLUDES: ClassVar[frozenset] = frozenset(
        {"buffer_path", "data_path", "download", "num_experts", "add", "device", "track", "plugin_options"})
    SPLIT_OPTIONS: ClassVar[tuple[str, ...]] = ("validation", "validation_seed")

    def output_dir(self, datasets: Registry) -> Path:
        """Where the buffers go: ``buffer_path/DATASET[_NO_ZCA]/MODEL`` (the dataset's spec, from
        ``datasets``, says whether its folder carries ``_NO_ZCA``)."""
        return Path(self.buffer_path).expanduser() / datasets.get(self.dataset).buffer_subdir(self.model, self.zca)

    def training_options(self) -> dict[str, Any]:
        """The settings that shape the experts (not where they are written, nor how many), the
        validation split among them: experts that never saw other training images are other
        experts (the seed of no split is no setting: recorded as 0)."""
        options = {k: v for k, v in asdict(self).items() if k not in self.FINGERPRINT_EXCLUDES}
        if not self.validation:
            options["validation_seed"] = 0
        return options

    def fingerprint(self) -> str:
        """Hash of :meth:`training_options`; without a validation split and in fp32, the hash of the
        settings before the split and the precision existed (the fingerprints of such experts do
        not change)."""
        options = self.training_options()
        if not self.validation:
            options = {k: v for k, v in options.items() if k not in self.SPLIT_OPTIONS}
        if self.precision == FP32:
            options.pop("precision")
        return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DistillConfig(RunOptions, EvalOptions, DataOptions):
    """Options of ``dd-harness distill`` (public MTT hyper-parameter names and defaults)."""

    model: str = option("ConvNet", "model name (see 'dd-harness models')")
    matcher: str = option("", "trajectory matcher, e.g. mtt or mct (see 'dd-harness plugins')")
    sampler: str | None = option(None, "segment sampler (default: the matcher's own)")
    gradient_mode: str | None = option(None, "how the loss is differentiated through the student steps: auto "
                                             "(unrolled where its memory fits comfortably, else checkpointed; both "
                                             "exact), or a mode from 'dd-harness plugins' (default: the matcher's "
                                             "own, auto for mtt and mct)")
    buffer_path: str = option("buffers", "folder of expert buffers, or the public root holding DATASET[_NO_ZCA]/MODEL",
                              metavar="DIR")
    out: str = option("runs/distill", "run directory", metavar="DIR")
    ipc: int = option(1, "images per class", minimum=1, maximum=100_000)
    syn_steps: int = option(20, "student steps per iteration", minimum=1, maximum=100_000)
    meta_batch: int | None = option(None, "segments matched per iteration, each with its own expert, start and "
                                          "student draws, their gradients averaged (default: the number of "
                                          "processes; under torchrun a multiple of it, each process matching its "
                                          "share)", minimum=1, maximum=100_000, metavar="M")
    expert_epochs: float = option(3.0, "epochs between start and target", above=0)
    max_start_epoch: float = option(25.0, "upper bound of the start epoch", minimum=0)
    min_start_epoch: float = option(0.0, "lower bound of the start epoch", minimum=0)
    lr_img: float = option(1000.0, "learning rate of the synthetic pixels", above=0)
    lr_lr: float = option(1e-5, "learning rate of the student step size alpha (0: alpha stays fixed)", minimum=0)
    lr_teacher: float = option(0.01, "initial student step size alpha", above=0)
    student_precision: str = option(FP32, "precision of the student's steps (every gradient mode): " + PRECISION_HELP,
                                    choices=PRECISIONS)
    batch_syn: int | None = option(None, "student minibatch (default: all images)", minimum=1)
    pix_init: str = option("real", "initial images: real (random real images) or noise", choices=("real", "noise"))
    iterations: int = option(5000, "distillation iterations", minimum=1, maximum=10_000_000)
    eval_it: int = option(500, "evaluate every N iterations (0: never)", minimum=0)
    eval_models: tuple[str, ...] = option((), "evaluate on these architectures too, comma-separated", metavar="MODELS")
    max_files: int | None = option(None, "use the first N buffer files (in name order)", minimum=1,
                                   metavar="N")
    max_experts: int | None = option(None, "use the first N experts of every file (public --max_experts)", minimum=1,
                                     metavar="N")
    checkpoint_every: int = option(50, "write a checkpoint every N iterations", minimum=1)
    save_every_eval: bool = option(False, "keep the synthetic set of every evaluation in snapshots/")
    baseline: bool = option(True, "do not evaluate the random real subset of the same size that is otherwise "
                                  "trained once, at the first evaluation, with the same networks (the baseline "
                                  "line of curves.png and of the below-baseline warning)", negative="--no-baseline")
    stall_iterations: int = option(50, "warn once when the matching loss has not moved for this many iterations "
                                       "(0: never)", minimum=0, maximum=10_000_000, metavar="N")
    stall_tolerance: float = option(0.01, "the loss has not moved when its range (max - min) over those iterations "
                                          "is at most this fraction of its mean", above=0, maximum=1,
                                    metavar="FRACTION")
    alpha_frozen_iterations: int = option(50, "warn once when alpha has not moved for this many iterations "
                                              "although --lr-lr > 0 (its updates skipped, or too small to change it; "
                                              "0: never)", minimum=0, maximum=10_000_000, metavar="N")
    recipe: str | None = option(None, "the recipe the options came from", cli=False)
    recipe_version: int | None = option(None, "the version of that recipe", cli=False, minimum=1)
    plugin_options: dict[str, Any] = option({}, "values of the options that plugins define", cli=False)

    def resolved_batch_syn(self, num_images: int) -> int:
        return self.batch_syn or num_images

    def validate(self) -> None:
        super().validate()
        if not self.matcher:
            raise ConfigError("choose a trajectory matcher with --matcher (see 'dd-harness plugins')")

    def eval_settings(self) -> EvalSettings:
        """The evaluation protocol of this run (everything ``dd-harness eval`` needs)."""
        return EvalSettings.from_dict(self.to_dict())

    def evaluation_protocol(self) -> dict:
        """How the run evaluates its set during distillation, as plain values (see
        :meth:`EvalSettings.description`; on :meth:`scored_split`), with the random real subset it
        is compared with."""
        protocol = self.eval_settings().description((self.model, *self.eval_models), "the learned alpha",
                                                    self.scored_split())
        protocol["random_subset"] = ({"per_class": self.ipc, "lr": self.lr_teacher, "seed": self.seed}
                                     if self.baseline else None)
        return protocol


LEARNED, TEACHER = "learned", "teacher"
"""The step sizes ``--eval-lr`` names: the run's learned alpha (``lr.pt``), its ``lr_teacher``."""


def parse_eval_lr(text: str) -> dict[str | None, float | str]:
    """``--eval-lr`` as a mapping: architecture -> step size, ``None`` -> the step size of every
    architecture not named. Entries are comma-separated, each ``VALUE`` or ``MODEL=VALUE``; a value
    is a positive number, ``learned`` or ``teacher`` (e.g. ``ConvNetW32=0.01,ResNet18=0.001,learned``).
    Without an unnamed entry the others train with ``learned``.

    :raises ConfigError: an empty entry, a value that is none of these, a name given twice.
    """
    rates: dict[str | None, float | str] = {}
    for entry in text.split(","):
        model, _, value = entry.rpartition("=")
        model, value = model.strip() or None, value.strip()
        if value in (LEARNED, TEACHER):
            rate: float | str = value
        else:
            try:
                rate = float(value)
            except ValueError:
                rate = -1.0
            if not 0 < rate < float("inf"):
                raise ConfigError(f"--eval-lr {text}: {entry.strip()!r} is not a learning rate (a positive number, "
                                  f"{LEARNED} or {TEACHER}, optionally after MODEL=)")
        if model in rates:
            raise ConfigError(f"--eval-lr {text}: {'every other architecture' if model is None else model} "
                              f"is given two learning rates")
        rates[model] = rate
    rates.setdefault(None, LEARNED)
    return rates


@dataclass(frozen=True)
class EvalCommandConfig(DeviceOption):
    """Options of ``dd-harness eval`` (the protocol itself comes from the run's config.json)."""

    models: tuple[str, ...] = option((), "architectures, comma-separated (default: the run's model)", metavar="MODELS")
    num_eval: int = option(5, "networks per architecture and set", minimum=1, maximum=1000)
    epoch_eval_train: int | None = option(None, "training epochs (default: the run's value)", minimum=1,
                                          maximum=100_000)
    seed: int = option(0, "random seed of the evaluation networks", minimum=0, maximum=MAX_INT)
    eval_lr: str = option(LEARNED, "step size of the networks trained on the synthetic set: learned (the run's "
                                   "learned alpha, lr.pt), teacher (the run's --lr-teacher), a number, or per "
                                   "architecture: MODEL=VALUE entries, comma-separated, and one VALUE for the others "
                                   "(e.g. ConvNetW32=0.01,ResNet18=0.001,learned)", metavar="LR")
    baseline_lr: str = option("same", "step size of the random real subset and the --full-data networks: same (the "
                                      "synthetic set's, per architecture: only the data differ) or teacher (the run's "
                                      "--lr-teacher)", choices=("same", TEACHER))
    eval_precision: str | None = option(None, "precision of every evaluation network: fp32 or bf16 (see distill's "
                                              "--eval-precision; default: the run's)", choices=PRECISIONS)
    dsa: bool | None = option(None, "DSA augmentation of every evaluation network's batches (default: the run's "
                                    "--dsa/--no-dsa)", negative_help="no augmentation of the evaluation networks' "
                                                                     "batches (default: the run's --dsa/--no-dsa)")
    set: str | None = option(None, "which set of the run: final (images.pt), best (best/: the best-evaluated set) "
                                   "or an ITERATION kept in snapshots/ by --save-every-eval (default: final, or the "
                                   "set --run points at, e.g. RUN/best)", metavar="final|best|ITERATION")
    data_path: str | None = option(None, "folder with the dataset files (default: the run's)", metavar="DIR")
    validation: int | None = option(None, "score on the run's validation split (default for a run distilled with "
                                          "--validation K; passing K again is the same), or 0: on the test split "
                                          "(the default for other runs); another split is refused: its images were "
                                          "among those the run's experts and initial images came from",
                                    minimum=0, maximum=MAX_INT, metavar="K")
    validation_seed: int | None = option(None, "the run's --validation-seed (default: the run's)", minimum=0,
                                         maximum=MAX_INT, metavar="S")
    baseline: bool = option(True, "evaluate a random real subset of the same size too (the baseline column)",
                            negative="--no-baseline",
                            negative_help="skip the random real subset: evaluate the synthetic set only")
    report_dir: str | None = option(None, "folder for eval.json and eval_table.md (default: beside the evaluated set: "
                                          "RUN/, RUN/best/, RUN/snapshots/)", metavar="DIR")
    batched: bool = option(False, "train the num_eval networks together (torch.func.vmap)")
    full_data: bool = option(False, "also train the networks on the whole real training set under the same "
                                    "protocol (DD-Ranking's HLR and LRS need it) and cache their accuracy")
    full_data_accuracy: float | None = option(None, "test accuracy in percent of networks trained on the whole real "
                                                    "training set under this protocol, for HLR and LRS (default: "
                                                    "the one cached by 'eval --full-data')", minimum=0, maximum=100,
                                              metavar="PCT")
    full_data_subset: int | None = option(None, "with --full-data: train the full-data networks on K class-balanced "
                                                "real training images (K // classes per class, always the same ones) "
                                                "instead of all of them, a cheap approximation labelled 'full data "
                                                "(subset of K)' and cached apart; without --full-data: read that "
                                                "cached approximation", minimum=1, metavar="K")

    def validate(self) -> None:
        super().validate()
        if self.full_data and self.full_data_accuracy is not None:
            raise ConfigError("--full-data measures the full-data accuracy and --full-data-accuracy gives it: "
                              "pass one of them")
        if self.full_data_subset is not None and self.full_data_accuracy is not None:
            raise ConfigError("--full-data-subset approximates the full-data accuracy and --full-data-accuracy gives "
                              "it: pass one of them")
        parse_eval_lr(self.eval_lr)

    def eval_lr_of(self, model: str, learned: float, teacher: float) -> float:
        """The step size of ``model``'s networks on the synthetic set (``--eval-lr``), given the run's
        learned alpha and ``lr_teacher``."""
        rates = parse_eval_lr(self.eval_lr)
        rate = rates.get(model, rates[None])
        return learned if rate == LEARNED else teacher if rate == TEACHER else float(rate)

    def baseline_lr_of(self, model: str, learned: float, teacher: float) -> float:
        """The step size of ``model``'s networks on the random real subset and the full data
        (``--baseline-lr``): the synthetic set's, or ``lr_teacher``."""
        return teacher if self.baseline_lr == TEACHER else self.eval_lr_of(model, learned, teacher)


@dataclass(frozen=True)
class ConvertConfig(Config):
    """Options of ``dd-harness convert`` that every converter shares."""

    to: str = option("", "target format (a registered buffer converter)", metavar="FORMAT")
    out: str = option("", "output folder", metavar="DIR")
    track: tuple[str, ...] = option((), "experiment trackers, comma-separated (see 'dd-harness plugins')")
    plugin_options: dict[str, Any] = option({}, "values of the options that plugins define", cli=False)
