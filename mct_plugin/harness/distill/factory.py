"""Building a distillation run from its config: data, student, matcher, sampler, synthetic set.

:func:`component_classes` refuses unknown names before anything is loaded; :func:`build_parts` makes
the pieces in a fixed order (the random number generators are consumed in that order, so the
same seed gives the same run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..augment import DifferentiableAugmentation
from ..components import Components
from ..config import DistillConfig
from ..data import RealDataset, load_dataset
from ..models import FunctionalModel
from ..runtime.devices import resolve_device
from .gradient_modes import GradientMode, StudentProblem
from .matching import Matcher, Sampler, normalised_distance
from .memory import AUTO, choose_exact_mode
from .recipe_check import check_experts_against_recipe
from .synthetic import SyntheticSet


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


def component_classes(config: DistillConfig, components: Components) -> tuple[type[Matcher], type[Sampler]]:
    """The matcher and sampler classes, after a one-line error for any unknown name in ``config``
    (:meth:`Components.check_names`)."""
    matcher_cls = components.matchers.get(config.matcher)
    components.check_names(models=[config.model, *config.eval_models], datasets=[config.dataset],
                           samplers=[config.sampler or matcher_cls.default_sampler],
                           gradient_modes=[mode for mode in [config.gradient_mode or matcher_cls.default_gradient_mode]
                                           if mode != AUTO],
                           trackers=config.track)
    return matcher_cls, components.samplers.get(config.sampler or matcher_cls.default_sampler)


def build_parts(config: DistillConfig, components: Components, matcher_cls: type[Matcher],
                sampler_cls: type[Sampler], data: RealDataset | None, report: Callable[[str], None]) -> RunParts:
    """Load the data and make every piece of the run (the caller has seeded the generators)."""
    if data is None:
        data = load_dataset(components.datasets.get(config.dataset), config.data_path, download=config.download, zca=config.zca)
    device = resolve_device(config.device)
    data = data.to(device)
    template = components.models.create(config.model, data.spec.channels, data.num_classes, data.spec.image_size)
    template.to(device).train()
    model = FunctionalModel(template)
    matcher = matcher_cls(config, model, report, components=components)
    matcher.open(Path(config.buffer_path))
    if config.recipe and config.recipe in components.recipes:  # before the sampler refuses too short experts
        check_experts_against_recipe(components.recipes.get(config.recipe), config, matcher, report)
    sampler = sampler_cls(config)
    sampler.bind(matcher.num_epochs)
    augment = DifferentiableAugmentation(data.spec.image_size, config.dsa_strategy).to(device) if config.dsa else None
    synthetic = SyntheticSet.initialise(data, config.ipc, config.pix_init, config.lr_teacher)
    name = config.gradient_mode
    if name == AUTO:
        choice = choose_exact_mode(probe_problem(config, model, synthetic, augment))
        name = choice.name
        report(f"gradient mode: {name} ({choice.reason}; --gradient-mode chooses another)")
    gradient_mode = components.gradient_modes.get(name).from_config(config)
    optimizer_img = torch.optim.SGD([synthetic.images], lr=config.lr_img, momentum=0.5)
    optimizer_lr = torch.optim.SGD([synthetic.lr], lr=config.lr_lr, momentum=0.5)
    return RunParts(data, device, model, matcher, sampler, gradient_mode, augment, synthetic, optimizer_img,
                    optimizer_lr)


def probe_problem(config: DistillConfig, model: FunctionalModel, synthetic: SyntheticSet,
                  augment: DifferentiableAugmentation | None) -> StudentProblem:
    """A student problem shaped like the run's (for measuring one step's memory)."""
    start = model.initial_flat().to(synthetic.images.device)
    return StudentProblem(model, start, lambda theta: normalised_distance(theta, start, start), synthetic.images,
                          synthetic.labels, synthetic.lr, config.syn_steps,
                          config.resolved_batch_syn(len(synthetic.images)), augment)
