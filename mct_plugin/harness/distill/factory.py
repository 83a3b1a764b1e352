"""Building a distillation run from its config: data, student, matcher, sampler, synthetic set.

:func:`with_run_defaults` resolves what the user left to the matcher (and the precisions the
device runs) and refuses unknown names before anything is loaded; :func:`build_parts` makes the
pieces in a fixed order (the random number generators are consumed in that order, so the same
seed gives the same run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..augment import DifferentiableAugmentation
from ..components import ComponentContext, Components
from ..config import DistillConfig
from ..data import RealDataset, ValidationSplit, load_dataset
from ..models import FunctionalModel
from ..options import flag
from ..runtime.devices import resolve_device
from ..runtime.precision import resolve_precision
from .gradient_modes import GradientMode, StudentProblem
from .matching import Matcher, Sampler, normalised_distance
from .recipe_check import check_experts_against_recipe
from .synthetic import SyntheticSet
from .validation_check import check_experts_split


@dataclass
class RunParts:
    """Everything one distillation works with."""

    data: RealDataset
    device: torch.device
    model: FunctionalModel
    matcher: Matcher
    sampler: Sampler
    gradient_mode: GradientMode
    augment: DifferentiableAugmentation | None
    synthetic: SyntheticSet
    optimizer_img: torch.optim.Optimizer
    optimizer_lr: torch.optim.Optimizer


def run_components(config: DistillConfig) -> set[str]:
    """The components a run with ``config`` (defaults resolved) uses, as ``"kind:name"``."""
    return {f"matcher:{config.matcher}", f"sampler:{config.sampler}", f"gradient mode:{config.gradient_mode}",
            *(f"tracker:{name}" for name in config.track)}


def with_run_defaults(config: DistillConfig, components: Components, recorded: Mapping[str, Any] | None,
                      report: Callable[[str], None]) -> DistillConfig:
    """``config`` with what the user left to the matcher resolved, once, and unknown names refused
    before anything is loaded: the sampler (the matcher's own), the gradient mode (the matcher's
    own; a former name translated, with a log line; a mode that chooses among the exact ones, such
    as ``auto``, keeps the exact mode that a resumed run ``recorded``). Plugin options that no
    component of the run reads are named in one line. The student's and the evaluation's precision
    become those the run's device runs (:func:`~..runtime.precision.resolve_precision`: bf16
    without native support runs, and is recorded as, fp32, with one line each)."""
    matcher_cls = components.matchers.get(config.matcher)
    modes = components.gradient_modes
    sampler = config.sampler or matcher_cls.default_sampler
    mode = config.gradient_mode or matcher_cls.default_gradient_mode
    components.check_names(models=[config.model, *config.eval_models], datasets=[config.dataset],
                           samplers=[sampler], gradient_modes=[mode], trackers=config.track)
    if modes.canonical(mode) != mode:
        report(f"gradient mode {mode!r} is now called {modes.canonical(mode)!r} (recorded so)")
        mode = modes.canonical(mode)
    previous = (recorded or {}).get("gradient_mode")
    if modes.get(mode).chooses and isinstance(previous, str) and previous in modes and modes.get(previous).exact:
        mode = previous
    device = resolve_device(config.device)
    config = config.replace(sampler=sampler, gradient_mode=mode,
                            student_precision=resolve_precision(config.student_precision, device,
                                                                "--student-precision", report),
                            eval_precision=resolve_precision(config.eval_precision, device, "--eval-precision", report))
    in_use = run_components(config)
    if modes.get(mode).chooses:  # the options of every mode it may choose apply
        in_use |= {f"gradient mode:{entry.name}" for entry in modes if entry.obj.exact}
    _, ignored = components.plugin_options_in_use("distill", config.plugin_options, in_use)
    if ignored:
        users = sorted({owner.replace(":", " ") for owners in ignored.values() for owner in owners})
        report(f"{', '.join(map(flag, sorted(ignored)))} ignored: options of {', '.join(users)}, which this run does "
               f"not use")
    return config


def build_parts(config: DistillConfig, components: Components, data: RealDataset | None,
                report: Callable[[str], None]) -> RunParts:
    """Load the data (with the run's validation split held out, where it has one) and make every
    piece of the run (the caller has seeded the generators)."""
    validation = ValidationSplit.of(config)
    if data is None:
        data = load_dataset(components.datasets.get(config.dataset), config.data_path, download=config.download,
                            zca=config.zca, validation=validation)
    data.require_split(validation)
    device = resolve_device(config.device)
    data = data.to(device)
    template = components.models.create(config.model, data.spec.channels, data.num_classes, data.spec.image_size)
    template.to(device).train()
    model = FunctionalModel(template)
    context = ComponentContext(config, components, report, model=model)
    matcher = components.build("matcher", config.matcher, context)
    matcher.open(Path(config.buffer_path))
    check_experts_split(config, matcher, report)
    if config.recipe and config.recipe in components.recipes:  # before the sampler refuses too short experts
        check_experts_against_recipe(components.recipes.get(config.recipe), config, matcher, report)
    sampler = components.build("sampler", config.sampler, context)
    sampler.bind(matcher.num_epochs)
    augment = DifferentiableAugmentation(data.spec.image_size, config.dsa_strategy).to(device) if config.dsa else None
    synthetic = SyntheticSet.initialise(data, config.ipc, config.pix_init, config.lr_teacher)
    gradient_mode = components.build("gradient mode", config.gradient_mode, context).resolve(
        lambda: probe_problem(config, model, synthetic, augment))
    optimizer_img = torch.optim.SGD([synthetic.images], lr=config.lr_img, momentum=0.5)
    optimizer_lr = torch.optim.SGD([synthetic.lr], lr=config.lr_lr, momentum=0.5)
    return RunParts(data, device, model, matcher, sampler, gradient_mode, augment, synthetic, optimizer_img,
                    optimizer_lr)


def probe_problem(config: DistillConfig, model: FunctionalModel, synthetic: SyntheticSet,
                  augment: DifferentiableAugmentation | None) -> StudentProblem:
    """A student problem shaped like the run's (for measuring one step's memory)."""
    start = model.initial_flat().to(synthetic.images.device)
    devices = [start.device] if start.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # its draws leave torch's generators as they were
            return StudentProblem(model, start, lambda theta: normalised_distance(theta, start, start), synthetic.images,
                              synthetic.labels, synthetic.lr, config.syn_steps,
                              config.resolved_batch_syn(len(synthetic.images)), augment,
                              precision=config.student_precision)
