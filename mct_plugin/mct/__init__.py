"""MCT - Matching Convexified Trajectory (Zhong et al., arXiv 2406.19827, CVPR 2025) as a
``dd_harness`` plugin.

* :class:`~.convexified.ConvexifiedTrajectory` - straight-line expert trajectories paced like
  the original (waypoints + beta table), evaluable at any real epoch;
* buffer converter ``mct`` - MTT replay buffers (or the public MCT code's files) to compact,
  pickle-free ``*.mct.safetensors`` files;
* sampler ``continuous`` - real-valued start epochs, optional linear curriculum on the bound;
* matcher ``mct`` - normalised distance to the convexified target, optional soft labels.
"""

from pathlib import Path

from mct_plugin.harness.api import hookimpl, recipes_in

from .convexified import ConvexifiedTrajectory
from .converter import MCTConverter
from .matcher import MCTMatcher
from .options import ConvertOptions, DistillOptions
from .sampler import ContinuousSampler

__all__ = ["ConvexifiedTrajectory", "MCTConverter", "MCTMatcher", "ContinuousSampler"]
RECIPES = Path(__file__).parent / "recipes"


@hookimpl
def dd_register_matchers():
    return [MCTMatcher]


@hookimpl
def dd_register_samplers():
    return [ContinuousSampler]


@hookimpl
def dd_register_buffer_converters():
    return [MCTConverter]


@hookimpl
def dd_register_options(command):
    return {"distill": [DistillOptions], "convert": [ConvertOptions]}.get(command, [])


@hookimpl
def dd_register_recipes():
    return recipes_in(RECIPES)
