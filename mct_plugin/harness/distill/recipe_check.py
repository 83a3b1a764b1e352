"""``distill --recipe``: are the experts those the recipe was made for? One line if not.

A recipe names the experts it was made for (``dd-harness recipes NAME`` prints their command);
the buffers record what they were trained with (:mod:`..experts.metadata`; the MTT format
itself records nothing) and span some number of epochs. A mismatch is a warning, not an error:
the run may be meant as a variation. Whether the experts reach ``max_start_epoch +
expert_epochs`` is the sampler's to say (it caps the start epoch, naming the values), not this
warning's: the arithmetic is stated once, by the component that applies it.
"""

from __future__ import annotations

from typing import Callable

from ..config import DistillConfig
from ..recipes import Recipe, expert_mismatches
from .matching import Matcher


def check_experts_against_recipe(recipe: Recipe, config: DistillConfig, matcher: Matcher,
                                 report: Callable[[str], None]) -> None:
    """Report in one line how the experts ``matcher`` opened differ from those ``recipe`` was made
    for (ZCA or not, dataset, model, the training options they record, their epochs), or that they
    record nothing to check but their length."""
    recorded = matcher.recorded_training()
    found = expert_mismatches(recipe, config.to_dict(), matcher.num_epochs, recorded)
    where = getattr(matcher, "directory", None) or config.buffer_path
    unrecorded = "they record no training options (e.g. written by the public buffer.py), so only their length was checked"
    if found:
        report(f"warning: the experts in {where} are not those recipe {recipe.name} was made for: "
               + "; ".join(found + ([unrecorded] if recorded is None else []))
               + f"; 'dd-harness recipes {recipe.name}' shows the experts command")
    elif recorded is None:
        report(f"recipe {recipe.name}: the experts in {where} span {matcher.num_epochs} epochs; {unrecorded}")
