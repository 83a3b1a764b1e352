"""The keys under which ``metrics.jsonl`` rows record accuracies (fractions in [0, 1]).

The row of every evaluated iteration holds the split it was scored on (:data:`EVAL_SPLIT`), the
distilled set's accuracy (:data:`EVALUATION`) and,
with ``--eval-models``, every architecture's (:data:`EVAL_MODELS`); the row of the first evaluation
holds the random real subset's (:data:`RANDOM_SUBSET`). The harness, the benchmarks and the tests
name these keys through the constants here, never as string literals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccuracyKeys:
    """Where a row keeps one set's accuracy: the mean and the population std over the networks, and
    every network's accuracy."""

    mean: str
    std: str
    accuracies: str


EVALUATION = AccuracyKeys("eval_acc_mean", "eval_acc_std", "eval_accs")
"""The distilled set, on the architecture it is distilled for."""
RANDOM_SUBSET = AccuracyKeys("baseline_acc_mean", "baseline_acc_std", "baseline_accs")
"""The random real subset of the set's size (absent with ``--no-baseline``)."""
EVAL_MODELS = "eval_models"
"""With several evaluation architectures: architecture -> that architecture's accuracy, under :data:`PER_MODEL`."""
PER_MODEL = AccuracyKeys("mean", "std", "accs")
"""The keys of one architecture's accuracy inside :data:`EVAL_MODELS`."""
EVAL_SPLIT = "eval_split"
"""What the row's accuracies were scored on: ``test``, or ``validation (K=..., seed=...)`` (``--validation``)."""
