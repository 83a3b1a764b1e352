"""The MTT baseline (Cazenavette et al., CVPR 2022) as a ``dd_harness`` plugin.

Registered through the ``dd_harness`` entry point exactly like a third-party plugin: the
harness never imports this package by name.

* sampler ``discrete``: start epoch uniform over the integers ``min_start_epoch ..
  max_start_epoch - 1``, target ``start + expert_epochs``;
* matcher ``mtt``: the recorded SGD checkpoints of MTT replay buffers as start and target.

The components are declared :class:`~mct_plugin.harness.api.Lazy` (name, description, where
they live): their modules, and torch, load when a run uses them.
"""

from pathlib import Path

from mct_plugin.harness.api import Lazy, hookimpl, recipes_in


@hookimpl
def dd_register_matchers():
    return [Lazy("mct_plugin.mtt.matcher:MTTMatcher", "mtt", "MTT: match the recorded SGD trajectory (replay_buffer_*.pt)")]


@hookimpl
def dd_register_samplers():
    return [Lazy("mct_plugin.mtt.sampler:DiscreteSampler", "discrete",
                 "MTT: start epoch uniform over integers [min_start_epoch, max_start_epoch)")]


@hookimpl
def dd_register_recipes():
    return recipes_in(Path(__file__).parent / "recipes")
