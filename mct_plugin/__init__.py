"""mct_plugin: dataset distillation by trajectory matching.

``mct_plugin.harness`` is a generic trajectory-matching distillation host (data, models,
augmentation, experts, the distillation loop, evaluation, the ``dd-harness`` CLI).
``mct_plugin.mtt`` (the MTT baseline) and ``mct_plugin.mct`` (Matching Convexified Trajectory)
are plugins found through the ``dd_harness`` entry-point group, like any third-party plugin.
"""

__version__ = "0.1.0"
