"""A dd_harness plugin: MTT whose start and target parameters are averages of neighbouring
checkpoints (``--matcher mtt-averaged --average-window K``).

This module is what the entry point loads: hooks and option declarations only, no torch, so
``dd-harness --help`` stays quick. The matcher is declared ``Lazy`` (its name, description and
options, stated here and nowhere else) and imported the first time a run uses it.
"""

from dataclasses import dataclass

from mct_plugin.harness.api import Lazy, hookimpl, option


@dataclass(frozen=True)
class AveragingOptions:
    average_window: int = option(1, "average every checkpoint with up to K recorded neighbours on each side",
                                 minimum=0, maximum=1000, metavar="K")


@hookimpl
def dd_register_matchers():
    return [Lazy("averaged_mtt.matcher:AveragedMTTMatcher", "mtt-averaged",
                 "MTT with every checkpoint averaged with its neighbours (--average-window)",
                 options=AveragingOptions)]
