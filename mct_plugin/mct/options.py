"""The MCT plugin's options, declared once (type, default, range, help) for the command line,
``--config`` files, recipes and ``config.json``, one class per component: :class:`MatcherOptions`
(matcher ``mct``), :class:`SamplerOptions` (sampler ``continuous``) and :class:`ConvertOptions`
(buffer converter ``mct``). No torch: listings and ``--help`` read them from the declarations."""

from __future__ import annotations

from dataclasses import dataclass
from mct_plugin.harness.api import option

SMOOTHINGS = ("none", "interior", "end", "all", "public")
SPACINGS = ("even", "public")
PACINGS = ("distance", "uniform", "decreasing", "projected")
DTYPE_NAMES = ("float32", "float16", "bfloat16")
CURRICULA = ("none", "linear")


@dataclass(frozen=True)
class ConvexifyOptions:
    """How an SGD trajectory is convexified (shared by the matcher and the converter)."""

    waypoints: int = option(4, "P waypoints of the convexified trajectory (storage ~ P/(E+1) of MTT; the public "
                               "code's default 4); the trajectory is cut at the waypoints and each piece is "
                               "convexified on its own", minimum=2, maximum=100_000, metavar="P")
    smooth: str = option("public", "replace interior waypoints by the mean of their neighbours and/or the end by the "
                                   "mean of the last two checkpoints ('public': both when P > 2, after the betas are "
                                   "computed, as the MCT code; 'none': keep the recorded checkpoints)",
                         choices=SMOOTHINGS)
    waypoint_spacing: str = option("public", "public: the MCT code's range(0, K+1, (K+1)//(P-1)) (+K); even: "
                                             "round(p*K/(P-1))", choices=SPACINGS)
    pacing: str = option("distance", "how beta advances along a piece: distance (MCT), or the paper's ablations "
                                     "uniform / decreasing / projected", choices=PACINGS)


@dataclass(frozen=True)
class MatcherOptions(ConvexifyOptions):
    """The options of the ``mct`` matcher (``dd-harness distill --matcher mct``)."""

    teacher_label: bool = option(False, "train the student on soft labels: the softmax of the expert at "
                                        "--label-epoch (labels.pt is then (N, classes))")
    label_epoch: float | None = option(None, "epoch of the expert that gives the soft labels (default: "
                                             "--max-start-epoch)", minimum=0, metavar="EPOCH")


@dataclass(frozen=True)
class SamplerOptions:
    """The options of the ``continuous`` sampler (``--sampler continuous``, the mct matcher's own)."""

    start_curriculum: str = option("none", "linear: grow the start-epoch upper bound over the iterations (public "
                                           "MCT code)", choices=CURRICULA)
    curriculum_initial: float = option(0.5, "upper bound of the start epoch at iteration 0 (linear curriculum)",
                                       minimum=0, metavar="EPOCH")
    curriculum_iterations: int | None = option(None, "slope: the bound grows by max_start_epoch per this many "
                                                     "iterations (default: iterations - 2500 as in the public code, or "
                                                     "iterations)", minimum=1, metavar="N")


@dataclass(frozen=True)
class ConvertOptions(ConvexifyOptions):
    """The options of the ``mct`` buffer converter (``dd-harness convert --to mct``)."""

    dtype: str = option("float32", "storage dtype of the waypoints", choices=DTYPE_NAMES)
    overwrite: bool = option(False, "replace existing outputs made from other sources or options")
    dataset: str | None = option(None, "dataset of the experts (default: from the folder layout)")
    model: str | None = option(None, "model of the experts (default: from the folder layout)")
