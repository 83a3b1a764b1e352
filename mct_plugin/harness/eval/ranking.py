"""DD-Ranking's label-robust numbers: IOR, HLR and LRS (pure functions on accuracies; no torch).

Definitions (Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset Distillation",
arXiv:2505.13300; NUS-HPC-AI-Lab/DD-Ranking, ``README.md`` and ``doc/introduction.md``, section
"Label-Robust Score (LRS)", commit b8b09664)::

    HLR   = Acc_real-hard - Acc_syn-hard          hard-label recovery (lower is better)
    IOR   = Acc_syn-any  - Acc_rdm-any            improvement over random (higher is better)
    alpha = w * IOR - (1 - w) * HLR,  w in [0, 1] (w = 0.5 on their leaderboard)
    LRS   = (e^alpha - e^-1) / (e - e^-1)         label-robust score, in [0, 1] (shown x 100 %)

``real-hard``: networks trained on the whole real training set with hard labels; ``syn-hard``: on
the synthetic set with hard labels; ``syn-any``: on the synthetic set as its method evaluates it
(hard or soft labels); ``rdm-any``: on a random real subset of the same size, evaluated the same way.

Accuracies enter as fractions of 1 (0.8123, not 81.23): only then does alpha lie in [-1, 1] and the
normalisation map it onto [0, 1] as the definition says (alpha = -1 gives 0, alpha = 1 gives 1).
Their package feeds accuracies in percent into ``np.exp`` (``ddranking/metrics/hard_label.py``),
which leaves [0, 1] as soon as alpha exceeds one point; we follow the written definition.

As their evaluators do, the numbers are computed per evaluation run (network ``i`` of the synthetic
set with network ``i`` of the random subset: the same seed initialises both) and reported as mean
and population standard deviation over the runs; the full-data accuracy is one number (their cache
holds one value per dataset and model).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

LEADERBOARD_WEIGHT = 0.5  # w of DD-Ranking's leaderboard: IOR and HLR count equally
REFERENCE = ("DD-Ranking (Li et al., arXiv:2505.13300): IOR = Acc(syn) - Acc(rdm), HLR = Acc(real-hard) - "
             "Acc(syn-hard), LRS = (e^alpha - e^-1) / (e - e^-1), alpha = w IOR - (1 - w) HLR")


def improvement_over_random(synthetic: float, random: float) -> float:
    """IOR = Acc_syn-any - Acc_rdm-any (fractions of 1; positive: the synthetic set beats random
    real images of the same number)."""
    return synthetic - random


def hard_label_recovery(full_data: float, synthetic_hard: float) -> float:
    """HLR = Acc_real-hard - Acc_syn-hard (fractions of 1; 0: the synthetic set recovers the whole
    training set's accuracy)."""
    return full_data - synthetic_hard


def label_robust_score(ior: float, hlr: float, weight: float = LEADERBOARD_WEIGHT) -> float:
    """LRS = (e^alpha - e^-1) / (e - e^-1), alpha = weight * IOR - (1 - weight) * HLR.

    :param ior: improvement over random, a fraction of 1.
    :param hlr: hard-label recovery, a fraction of 1.
    :param weight: w in [0, 1].
    :returns: the score in [0, 1] for IOR and HLR in [-1, 1].
    :raises ValueError: ``weight`` outside [0, 1].
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the LRS weight must lie in [0, 1] (got {weight})")
    alpha = weight * ior - (1.0 - weight) * hlr
    return (math.exp(alpha) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


@dataclass(frozen=True)
class Spread:
    """One DD-Ranking number over the evaluation runs (fractions of 1)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:  # population std, as DD-Ranking's np.std
        return statistics.pstdev(self.values)

    def as_dict(self) -> dict:
        return {"values": list(self.values), "mean": self.mean, "std": self.std}

    def points(self, signed: bool = False) -> str:
        """``mean +- std`` x 100 (percentage points or percent), e.g. ``+12.30 +- 0.50``; one value
        alone (one pair of networks has no std)."""
        shown = f"{100 * self.mean:{'+' if signed else ''}.2f}"
        return shown + (f" +- {100 * self.std:.2f}" if len(self.values) > 1 else "")


@dataclass(frozen=True)
class LabelRobustScores:
    """IOR, HLR and LRS of one architecture; a number is None when its inputs are missing (HLR and
    LRS need the full-data accuracy, IOR and LRS the random subset)."""

    model: str
    weight: float
    ior: Spread | None
    hlr: Spread | None
    lrs: Spread | None
    full_data_accuracy: float | None
    full_data_source: str | None

    def as_dict(self) -> dict:
        def entry(spread: Spread | None) -> dict | None:
            return spread.as_dict() if spread else None

        return {"model": self.model, "weight": self.weight, "ior": entry(self.ior), "hlr": entry(self.hlr),
                "lrs": entry(self.lrs), "full_data_accuracy": self.full_data_accuracy,
                "full_data_source": self.full_data_source}


def label_robust_scores(model: str, synthetic: Sequence[float], random: Sequence[float] | None,
                        full_data: float | None, *, full_data_source: str | None = None,
                        weight: float = LEADERBOARD_WEIGHT) -> LabelRobustScores:
    """DD-Ranking's numbers of one architecture from hard-label test accuracies (fractions of 1).

    :param synthetic: accuracy of each network trained on the synthetic set (hard labels).
    :param random: accuracy of each network trained on the random real subset, paired with
        ``synthetic`` by index; None: no random subset was evaluated (no IOR, no LRS).
    :param full_data: accuracy of networks trained on the whole real training set under the same
        protocol; None: unknown (no HLR, no LRS).
    :raises ValueError: empty or unpaired accuracies, an accuracy outside [0, 1].
    """
    if not synthetic or (random is not None and len(random) != len(synthetic)):
        raise ValueError(f"{model}: {len(synthetic)} synthetic-set accuracies and "
                         f"{len(random) if random is not None else 'no'} random-subset ones cannot be paired")
    for value in (*synthetic, *(random or ()), *(() if full_data is None else (full_data,))):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{model}: accuracy {value} is not a fraction in [0, 1]")
    ior = tuple(improvement_over_random(s, r) for s, r in zip(synthetic, random)) if random is not None else None
    hlr = tuple(hard_label_recovery(full_data, s) for s in synthetic) if full_data is not None else None
    lrs = tuple(label_robust_score(i, h, weight) for i, h in zip(ior, hlr)) if ior and hlr else None
    return LabelRobustScores(model, weight, Spread(ior) if ior else None, Spread(hlr) if hlr else None,
                             Spread(lrs) if lrs else None, full_data, full_data_source)


def ranking_markdown(rows: Sequence[LabelRobustScores]) -> str:
    """The printed table: IOR and HLR in percentage points, LRS in percent (mean +- std)."""
    def shown(spread: Spread | None, signed: bool = False) -> str:
        return spread.points(signed) if spread else "-"

    weight = rows[0].weight if rows else LEADERBOARD_WEIGHT
    lines = [f"{REFERENCE}, w = {weight:g}", "",
             "| model | IOR (points) | full data (%) | HLR (points) | LRS (%) |", "|---|---|---|---|---|"]
    for row in rows:
        full = f"{100 * row.full_data_accuracy:.2f} ({row.full_data_source})" \
            if row.full_data_accuracy is not None else "-"
        lines.append(f"| {row.model} | {shown(row.ior, signed=True)} | {full} | {shown(row.hlr)} | {shown(row.lrs)} |")
    return "\n".join(lines)
