"""The MTT baseline (Cazenavette et al., CVPR 2022) as a ``dd_harness`` plugin.

Registered through the ``dd_harness`` entry point exactly like a third-party plugin: the
harness never imports this package by name.

* sampler ``discrete``: start epoch uniform over the integers ``min_start_epoch ..
  max_start_epoch - 1``, target ``start + expert_epochs``;
* matcher ``mtt``: the recorded SGD checkpoints of MTT replay buffers as start and target.
"""

from pathlib import Path

from mct_plugin.harness.api import hookimpl, recipes_in

from .matcher import MTTMatcher
from .sampler import DiscreteSampler


@hookimpl
def dd_register_matchers():
    return [MTTMatcher]


@hookimpl
def dd_register_samplers():
    return [DiscreteSampler]


@hookimpl
def dd_register_recipes():
    return recipes_in(Path(__file__).parent / "recipes")
