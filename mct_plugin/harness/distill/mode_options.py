"""The options of the harness's gradient modes, declared without torch (``--help`` and listings
read them from the modes' declarations)."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True)
class CheckpointedOptions:
    """The options of the ``checkpointed`` gradient mode."""

    checkpoint_interval: int = option(0, "checkpointed gradient: keep every k-th student parameter vector and "
                                         "recompute the steps between (0: automatic, 1 while syn_steps vectors take "
                                         "<= 256 MiB, else ceil(sqrt(syn_steps)))", minimum=0, maximum=100_000,
                                      metavar="K")
