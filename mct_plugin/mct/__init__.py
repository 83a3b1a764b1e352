"""MCT - Matching Convexified Trajectory (Zhong et al., arXiv 2406.19827, CVPR 2025) as a
``dd_harness`` plugin.

* :class:`~.convexified.ConvexifiedTrajectory` - straight-line expert trajectories paced like
  the original (waypoints + beta table), evaluable at any real epoch;
* buffer converter ``mct`` - MTT replay buffers (or the public MCT code's files) to compact,
  pickle-free ``*.mct.safetensors`` files;
* sampler ``continuous`` - real-valued start epochs, optional linear curriculum on the bound;
* matcher ``mct`` - normalised distance to the convexified target, optional soft labels.
"""

from mct_plugin.harness import hookimpl

from .convexified import PACINGS, SMOOTHINGS, SPACINGS, ConvexifiedTrajectory
from .converter import MCTConverter
from .format import DTYPES
from .matcher import MCTMatcher
from .sampler import CURRICULA, ContinuousSampler

__all__ = ["ConvexifiedTrajectory", "MCTConverter", "MCTMatcher", "ContinuousSampler"]


@hookimpl
def dd_register_matchers():
    return [MCTMatcher]


@hookimpl
def dd_register_samplers():
    return [ContinuousSampler]


@hookimpl
def dd_register_buffer_converters():
    return [MCTConverter]


def _convexify_options(group) -> None:
    group.add_argument("--waypoints", type=int, default=2,
                       help="P >= 2 waypoints of the convexified trajectory (storage ~ P/(E+1) of MTT)")
    group.add_argument("--smooth", default="none", choices=SMOOTHINGS,
                       help="replace interior waypoints / the end by neighbour means ('public': as the MCT code, P>2)")
    group.add_argument("--waypoint-spacing", default="even", choices=SPACINGS,
                       help="even: round(p*K/(P-1)); public: the MCT code's range(0, K+1, (K+1)//(P-1))")
    group.add_argument("--pacing", default="distance", choices=PACINGS,
                       help="how beta advances along a piece: distance (MCT), or the paper's ablations "
                            "uniform / decreasing / projected")


@hookimpl
def dd_add_cli_options(command, parser):
    if command == "convert":
        group = parser.add_argument_group("mct converter (--to mct)")
        _convexify_options(group)
        group.add_argument("--dtype", default="float32", choices=list(DTYPES), help="storage dtype of the waypoints")
        group.add_argument("--overwrite", action="store_true", help="replace existing outputs made from other sources")
        group.add_argument("--dataset", default=None, help="dataset of the experts (default: from the folder layout)")
        group.add_argument("--model", default=None, help="model of the experts (default: from the folder layout)")
    elif command == "distill":
        group = parser.add_argument_group("mct matcher and continuous sampler (--matcher mct)")
        _convexify_options(group)
        group.add_argument("--teacher-label", action="store_true",
                           help="train the student on soft labels from the expert at --label-epoch")
        group.add_argument("--label-epoch", type=float, default=None, help="default: --max-start-epoch")
        group.add_argument("--start-curriculum", default="none", choices=CURRICULA,
                           help="linear: grow the start-epoch upper bound over the iterations (public MCT code)")
        group.add_argument("--curriculum-initial", type=float, default=0.5, help="upper bound at iteration 0")
        group.add_argument("--curriculum-iterations", type=int, default=None,
                           help="slope: the bound grows by max_start_epoch per this many iterations "
                                "(default: iterations - 2500 as in the public code, or iterations)")
