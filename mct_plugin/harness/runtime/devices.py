"""Which device computations run on: ``--device auto|cpu|cuda|cuda:N``.

``auto`` picks CUDA when available, else the CPU; ``cuda`` without an index is the current CUDA
device (under torchrun, the GPU of the process's ``LOCAL_RANK``, which joining the process group
makes current). Data, models, synthetic images and the student live on that device; expert
trajectories stay in (memory-mapped) host memory and only the two points of a segment are moved.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """The :class:`torch.device` for ``name`` (raises ConfigError if it is not available)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device
