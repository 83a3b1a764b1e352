"""What a run's ``metrics.jsonl`` says about its sets: the accuracy of the final set, of the
best-evaluated set (what the papers report, kept in ``best/``) and of the random real subset,
each labelled with the iteration it was measured at, and the run's warnings (event rows).

The distillation loop writes this as ``run_summary.json`` and its closing log line; ``dd-harness
eval`` repeats it beside its own measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..io.metric_names import EVALUATION, RANDOM_SUBSET
from .full_data import networks as describe_networks
from .protocol import EvalResult


@dataclass(frozen=True)
class RunSummary:
    """The accuracies a run recorded while it distilled (see the module docstring)."""

    final: EvalResult | None
    best: EvalResult | None
    random_subset: EvalResult | None
    events: list[dict] = field(default_factory=list)

    @classmethod
    def from_rows(cls, rows: Iterable[dict], model: str, last_iteration: int) -> "RunSummary":
        """From the metrics rows of a run distilling for ``model``: ``final`` is the evaluation at
        ``last_iteration`` (None when the run did not evaluate there), ``best`` the best evaluation
        (:meth:`EvalResult.improves_on`), ``random_subset`` the baseline row's, ``events`` the warnings."""
        final = best = random_subset = None
        events = []
        for row in rows:
            if "event" in row:
                events.append(row)
                continue
            measured = EvalResult.from_row(row, model, EVALUATION, row["iteration"])
            if measured is not None:
                if measured.improves_on(best):
                    best = measured
                if measured.iteration == last_iteration:
                    final = measured
            baseline = EvalResult.from_row(row, model, RANDOM_SUBSET)
            if baseline is not None:
                random_subset = baseline
        return cls(final, best, random_subset, events)

    def as_dict(self) -> dict:
        """``final``, ``best`` and ``random_subset`` each ``{"iteration", "mean", "std", "networks"}``
        (or None), and ``events``: how ``run_summary.json`` and ``eval.json`` give it."""
        def recorded(result: EvalResult | None) -> dict | None:
            return None if result is None else {"iteration": result.iteration, "mean": result.mean, "std": result.std,
                                                "networks": result.networks}

        return {"final": recorded(self.final), "best": recorded(self.best),
                "random_subset": recorded(self.random_subset), "events": list(self.events)}

    def describe(self) -> str:
        """One line: the final and the best set, each with its iteration (a best set of iteration 0
        is said to be the initial images), and the random subset."""
        parts = []
        if self.final is not None:
            parts.append(f"final set (iteration {self.final.iteration}): {self.final}%")
        if self.best is not None:
            same = self.final is not None and self.best.iteration == self.final.iteration
            initial = " - the initial images: no later evaluation beat them" if self.best.iteration == 0 else ""
            parts.append(f"best set (iteration {self.best.iteration}, kept in best/): {self.best}%"
                         + (" - the final set is the best" if same else initial))
        if self.random_subset is not None:
            parts.append(f"random real subset: {self.random_subset}%")
        if not parts:
            return "no evaluation during distillation (--eval-it 0)"
        networks = {r.networks for r in (self.final, self.best, self.random_subset) if r is not None}
        return "; ".join(parts) + (f" ({describe_networks(networks.pop())} each)" if len(networks) == 1 else "")
