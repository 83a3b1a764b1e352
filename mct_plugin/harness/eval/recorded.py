"""What a run's ``metrics.jsonl`` says about its sets: the accuracy of the final set, of the
best-evaluated set (what the papers report, kept in ``best/``) and of the random real subset,
each labelled with the iteration it was measured at, and the run's warnings (event rows).

The distillation loop writes this as ``run_summary.json`` and its closing log line; ``dd-harness
eval`` repeats it beside its own measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class RecordedAccuracy:
    """Test accuracy (fractions) of ``networks`` networks, measured at ``iteration`` (None: the
    random real subset, which belongs to no iteration)."""

    iteration: int | None
    mean: float
    std: float
    networks: int

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f} +- {100 * self.std:.2f}%"


@dataclass(frozen=True)
class RunSummary:
    """The accuracies a run recorded while it distilled (see the module docstring)."""

    final: RecordedAccuracy | None
    best: RecordedAccuracy | None
    random_subset: RecordedAccuracy | None
    events: list[dict] = field(default_factory=list)

    @classmethod
    def from_rows(cls, rows: Iterable[dict], last_iteration: int) -> "RunSummary":
        """From metrics rows: ``final`` is the evaluation at ``last_iteration`` (None when the run
        did not evaluate there), ``best`` the first evaluation with the highest mean (the rule that
        fills ``best/``), ``random_subset`` the baseline row, ``events`` the warnings."""
        final = best = random_subset = None
        events = []
        for row in rows:
            if "event" in row:
                events.append(row)
                continue
            if "eval_acc_mean" in row:
                measured = RecordedAccuracy(row["iteration"], row["eval_acc_mean"], row["eval_acc_std"],
                                            len(row.get("eval_accs", [])))
                if best is None or measured.mean > best.mean:
                    best = measured
                if row["iteration"] == last_iteration:
                    final = measured
            if "baseline_acc_mean" in row:
                random_subset = RecordedAccuracy(None, row["baseline_acc_mean"], row["baseline_acc_std"],
                                                 len(row.get("baseline_accs", [])))
        return cls(final, best, random_subset, events)

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line: the final and the best set, each with its iteration, and the random subset."""
        parts = []
        if self.final is not None:
            parts.append(f"final set (iteration {self.final.iteration}): {self.final}")
        if self.best is not None:
            same = self.final is not None and self.best.iteration == self.final.iteration
            parts.append(f"best set (iteration {self.best.iteration}, kept in best/): {self.best}"
                         + (" - the final set is the best" if same else ""))
        if self.random_subset is not None:
            parts.append(f"random real subset: {self.random_subset}")
        if not parts:
            return "no evaluation during distillation (--eval-it 0)"
        networks = {r.networks for r in (self.final, self.best, self.random_subset) if r is not None}
        return "; ".join(parts) + (f" ({networks.pop()} networks each)" if len(networks) == 1 else "")
