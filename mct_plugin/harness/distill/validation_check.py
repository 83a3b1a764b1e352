"""``distill --validation K``: were the experts trained without the validation images? One line if not.

A validation split scores a run honestly only if none of its images shaped the synthetic set: not
its initial images (``load_dataset`` holds the split out of the training images) and not its
experts, whose training record (:mod:`..experts.metadata`) says which split they were trained
without. A run with a split is refused on experts trained with another split, with none, or that
record nothing; a run without a split on experts that held one out is fine (that is how a recipe
chosen on the validation split is scored once on the test set) and says so in one line.
"""

from __future__ import annotations

from typing import Callable

from ..config import DistillConfig
from ..data.validation import ValidationSplit
from ..errors import ConfigError
from .matching import Matcher


def trained_without(record: dict) -> ValidationSplit | None:
    """The validation split an expert-training ``record`` held out (None: none, as in records
    written before the option existed)."""
    size = record.get("validation") or 0
    return ValidationSplit(size, record.get("validation_seed") or 0) if size else None


def split_flags(split: ValidationSplit | None) -> str:
    """``--validation 500 --validation-seed 0``, or ``--validation 0`` for no split."""
    return f"--validation {split.size} --validation-seed {split.seed}" if split else "--validation 0"


def check_experts_split(config: DistillConfig, matcher: Matcher, report: Callable[[str], None]) -> None:
    """Refuse a run whose validation split is not the one every expert file ``matcher`` opened was
    trained without; report experts that held out a split the run does not use.

    :raises ConfigError: names the first such file and both splits.
    """
    wanted = ValidationSplit.of(config)
    for path in matcher.source_files():
        record = matcher.training_of(path)
        if wanted is not None and record is None:
            raise ConfigError(f"{split_flags(wanted)}: {path} records no training options (e.g. written by the "
                              f"public buffer.py), so its experts may have trained on the validation images; train "
                              f"experts with {split_flags(wanted)} and distil from those")
        trained = trained_without(record) if record is not None else None
        if wanted is not None and trained != wanted:
            saw = " (no split: the validation images were in their training)" if trained is None else ""
            raise ConfigError(f"{path} holds experts trained with {split_flags(trained)}{saw} but this run has "
                              f"{split_flags(wanted)}; train experts with {split_flags(wanted)} (another "
                              f"--buffer-path), or distil with the split they were trained with")
        if wanted is None and trained is not None:
            report(f"the experts in {path.parent} were trained without the {trained.describe()} images; this run "
                   f"has no validation split and scores on the test split")
            return
