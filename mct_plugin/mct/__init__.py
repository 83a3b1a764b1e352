"""MCT - Matching Convexified Trajectory (Zhong et al., arXiv 2406.19827, CVPR 2025) as a
``dd_harness`` plugin.

* :class:`~.convexified.ConvexifiedTrajectory` - straight-line expert trajectories paced like
  the original (waypoints + beta table), evaluable at any real epoch;
* buffer converter ``mct`` - MTT replay buffers (or the public MCT code's files) to compact,
  pickle-free ``*.mct.safetensors`` files;
* sampler ``continuous`` - real-valued start epochs, optional linear curriculum on the bound;
* matcher ``mct`` - normalised distance to the convexified target, optional soft labels.

The components are declared :class:`~mct_plugin.harness.api.Lazy` (their modules, and torch,
load when a run uses them); their options (:mod:`.options`) are declared with them and need no torch.
"""

from pathlib import Path

from mct_plugin.harness.api import Lazy, hookimpl, recipes_in

from .options import ConvertOptions, MatcherOptions, SamplerOptions

RECIPES = Path(__file__).parent / "recipes"


@hookimpl
def dd_register_matchers():
    return [Lazy("mct_plugin.mct.matcher:MCTMatcher", "mct",
                 "MCT: match the convexified trajectory (MCT files, public MCT files, or MTT buffers on the fly)",
                 options=MatcherOptions)]


@hookimpl
def dd_register_samplers():
    return [Lazy("mct_plugin.mct.sampler:ContinuousSampler", "continuous",
                 "MCT: start epoch uniform over reals [min_start_epoch, hi], optional linear growth of hi",
                 options=SamplerOptions)]


@hookimpl
def dd_register_buffer_converters():
    return [Lazy("mct_plugin.mct.converter:MCTConverter", "mct",
                 "MCT: convexified trajectories (waypoints + beta table) in safetensors, ~P/(E+1) of MTT's size",
                 options=ConvertOptions)]


@hookimpl
def dd_register_recipes():
    return recipes_in(RECIPES)
