"""Warnings that a run is not learning, each said once per run: in the log and as an event row of
``metrics.jsonl`` (``{"iteration": I, "event": KIND, "message": ...}``, written before the
iteration's own row).

* ``alpha_kept``: an update would have made alpha (the student's step size) zero or negative;
  the loop skips that update, so alpha keeps its last positive value;
* ``alpha_frozen``: alpha has not moved for ``--alpha-frozen-iterations`` iterations although
  ``--lr-lr`` > 0 (every update skipped, or too small to change it by ``ALPHA_FROZEN_TOLERANCE``
  of its value): the student's step size is no longer learnt, whether or not a baseline shows it;
* ``loss_stalled``: over the last ``--stall-iterations`` iterations the matching loss stayed
  within ``--stall-tolerance`` of its mean (max - min <= tolerance x mean): the student does not
  move, or the images do not change, so the set is not learning;
* ``below_random_subset``: an evaluation after iteration 0 scored below the random real subset
  of the same size (iteration 0 is not counted: its set is random real images itself).

:class:`RunWatch` only decides; the loop reports and writes. A resumed run rebuilds it from the
metrics rows it keeps, so a warning already given is not repeated and the loss window continues.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from ..eval.protocol import EvalResult

ALPHA_KEPT, ALPHA_FROZEN = "alpha_kept", "alpha_frozen"
LOSS_STALLED, BELOW_RANDOM_SUBSET = "loss_stalled", "below_random_subset"
# alpha has not moved when its range over the window is at most this fraction of its value
ALPHA_FROZEN_TOLERANCE = 1e-6


class RunWatch:
    """Decides when to warn (see the module docstring); each method returns the event row to write,
    or None."""

    def __init__(self, stall_iterations: int, stall_tolerance: float, rows: Iterable[dict] = (), *,
                 alpha_frozen_iterations: int = 0) -> None:
        self.stall_iterations, self.stall_tolerance = stall_iterations, stall_tolerance
        self.alpha_frozen_iterations = alpha_frozen_iterations
        self.losses: deque[tuple[int, float]] = deque(maxlen=max(1, stall_iterations))
        self.alphas: deque[tuple[int, float]] = deque(maxlen=max(1, alpha_frozen_iterations))
        self.said: set[str] = set()
        for row in rows:
            if "event" in row:
                self.said.add(row["event"])
            elif "loss" in row:
                self.losses.append((row["iteration"], row["loss"]))
                self.alphas.append((row["iteration"], row["alpha"]))

    def _event(self, kind: str, iteration: int, message: str) -> dict | None:
        if kind in self.said:
            return None
        self.said.add(kind)
        return {"iteration": iteration, "event": kind, "message": message}

    @staticmethod
    def _moved(window: deque, size: int, entry: tuple[int, float], allowed: Callable[[list[float]], float]) -> bool:
        """Append ``entry`` (iteration, value) to ``window``; whether it has moved: fewer than ``size``
        values yet, or their range exceeds ``allowed(values)``."""
        window.append(entry)
        values = [value for _, value in window]
        return len(values) < size or max(values) - min(values) > allowed(values)

    def alpha_rejected(self, iteration: int, rejected: float, kept: float) -> dict | None:
        return self._event(ALPHA_KEPT, iteration,
                           f"alpha would have become {rejected:.3g} at iteration {iteration}; that update is skipped "
                           f"and alpha keeps its last value {kept:.3g} (and again whenever an update would make it "
                           f"<= 0; lower --lr-lr if this repeats)")

    def alpha(self, iteration: int, alpha: float) -> dict | None:
        """After the update of ``iteration`` (call only when alpha is learnt, ``--lr-lr`` > 0)."""
        if not self.alpha_frozen_iterations or self._moved(self.alphas, self.alpha_frozen_iterations,
                                                           (iteration, alpha),
                                                           lambda values: ALPHA_FROZEN_TOLERANCE * abs(values[-1])):
            return None
        return self._event(ALPHA_FROZEN, iteration,
                           f"alpha has stayed at {alpha:.3g} for {self.alpha_frozen_iterations} iterations (iterations "
                           f"{self.alphas[0][0]}-{iteration}; --alpha-frozen-iterations) although --lr-lr > 0: the "
                           f"student's step size is no longer learnt (see alpha_update_skipped in metrics.jsonl; "
                           f"lower --lr-lr, or --lr-lr 0 to fix it on purpose)")

    def loss(self, iteration: int, loss: float) -> dict | None:
        if not self.stall_iterations or self._moved(self.losses, self.stall_iterations, (iteration, loss),
                                                    lambda values: self.stall_tolerance * abs(sum(values) / len(values))):
            return None
        low, high = min(value for _, value in self.losses), max(value for _, value in self.losses)
        return self._event(LOSS_STALLED, iteration,
                           f"the matching loss has not moved for {self.stall_iterations} iterations (iterations "
                           f"{self.losses[0][0]}-{iteration}: {low:.4g} to {high:.4g}, within {self.stall_tolerance:g} "
                           f"of its mean; --stall-iterations, --stall-tolerance): the set is not learning - check "
                           f"alpha in curves.png, --lr-img and --lr-lr")

    def evaluation(self, iteration: int, result: EvalResult, baseline: EvalResult | None) -> dict | None:
        if baseline is None or iteration == 0 or not result.mean < baseline.mean:
            return None
        return self._event(BELOW_RANDOM_SUBSET, iteration,
                           f"the evaluation at iteration {iteration} ({result}%) is below the random real subset "
                           f"of the same size ({baseline}%)")
