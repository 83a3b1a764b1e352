"""The gradient mode ``auto``: the fastest registered exact mode whose memory fits comfortably.

Every exact mode declares its memory for a problem (:meth:`GradientMode.memory_bytes`, in units
of one student step's graph) and its time relative to ``unrolled`` (``relative_time``); ``auto``
(:class:`Auto`) takes the fastest whose estimate is at most :data:`COMFORTABLE_SHARE` of the
memory the run can still take, else the one that needs least. With the harness's modes that is
``unrolled`` (fast, keeps the graph of every step) where it fits, else ``checkpointed`` (nearly
flat in ``syn_steps``). The graph of one step is measured (not guessed) by running one step
under :func:`torch.autograd.graph.saved_tensors_hooks` and adding up the bytes of every tensor
autograd saves (each storage once). The available memory is the free device memory on an
accelerator, ``MemAvailable`` (bounded by a cgroup limit) on the CPU, or
``DD_HARNESS_MEMORY_LIMIT`` (e.g. ``8G``, ``512M``, or bytes) where set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..errors import ConfigError
from .gradient_modes import GradientMode, MatchResult, StudentProblem, step_inputs, student_gradient

MEMORY_LIMIT_ENV = "DD_HARNESS_MEMORY_LIMIT"
# unrolled is chosen when its estimated graph takes at most this share of the available memory
COMFORTABLE_SHARE = 0.5
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class ModeChoice:
    """The automatic choice and why (``reason`` is one log line)."""

    name: str
    reason: str
    estimate_bytes: int
    available_bytes: int | None


def step_graph_bytes(problem: StudentProblem) -> int:
    """Bytes autograd keeps for one ``unrolled`` student step (its forward and the first backward,
    taken with a graph). Runs the first of ``problem``'s drawn steps (and draws nothing)."""
    p = problem
    seen: set[tuple[int, int]] = set()
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in seen and storage.data_ptr() != 0:
            seen.add(key)
            total += storage.nbytes()
        return tensor

    step = p.steps[0]
    w = p.start.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        g = student_gradient(p, w, step_inputs(p, p.images, step), step.index, create_graph=True)
        w_next = w - p.lr * g
    total += w_next.untyped_storage().nbytes()  # the new parameter vector each step adds
    return total


def parse_bytes(text: str) -> int:
    """``"8G"`` / ``"512M"`` / ``"1.5G"`` / ``"123456"`` -> bytes (binary units)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{MEMORY_LIMIT_ENV}={text!r} is not a memory size (e.g. 8G, 512M or a number of bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _cgroup_headroom() -> int | None:
    """``memory.max - memory.current`` of this process's cgroup (v2), if it is limited."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes the run can still allocate on ``device`` and where the figure comes from
    (``None`` when the platform does not say)."""
    if os.environ.get(MEMORY_LIMIT_ENV):
        return parse_bytes(os.environ[MEMORY_LIMIT_ENV]), MEMORY_LIMIT_ENV
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device}"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, flags=re.MULTILINE).group(1)) * 1024
    except (OSError, AttributeError):
        return None, "unknown"
    headroom = _cgroup_headroom()
    if headroom is not None and headroom < available:
        return headroom, "the cgroup's memory limit"
    return available, "available RAM"


def choose_exact_mode(problem: StudentProblem, modes: Sequence[GradientMode],
                      available: tuple[int | None, str] | None = None) -> ModeChoice:
    """Among the exact ``modes``, the fastest (``relative_time``) whose declared memory for
    ``problem`` is at most :data:`COMFORTABLE_SHARE` of the available memory (``available``: bytes
    and source, default :func:`available_memory`), else the one that needs least; the reason
    names the figures."""
    step_bytes = step_graph_bytes(problem)
    declared = [(mode.memory_bytes(problem, step_bytes), mode) for mode in modes if mode.exact]
    estimates = sorted(((e, mode) for e, mode in declared if e is not None), key=lambda pair: pair[1].relative_time)
    if not estimates:
        raise ConfigError("--gradient-mode auto: no registered exact gradient mode declares its memory")
    fastest_estimate, fastest = estimates[0]
    leanest_estimate, leanest = min(estimates, key=lambda pair: pair[0])
    free, source = available if available is not None else available_memory(problem.start.device)
    gib = 2**30
    if free is None:
        return ModeChoice(leanest.name, f"{fastest.name} would need ~{fastest_estimate / gib:.2f} GiB and the "
                                        f"available memory is unknown", fastest_estimate, None)
    estimate, chosen = next(((e, mode) for e, mode in estimates if e <= COMFORTABLE_SHARE * free),
                            (leanest_estimate, leanest))
    verdict = "fits" if chosen is fastest else "does not fit comfortably"
    reason = (f"{fastest.name}'s graph of {problem.syn_steps} steps, ~{fastest_estimate / gib:.2f} GiB, {verdict} in "
              f"{free / gib:.1f} GiB ({source})")
    return ModeChoice(chosen.name, reason, fastest_estimate, free)


class Auto(GradientMode):
    """``--gradient-mode auto``: one of the registered exact modes, chosen by :func:`choose_exact_mode`
    when the run is set up (config.json records the choice; a resumed run keeps it)."""

    chooses = True

    def resolve(self, probe: Callable[[], StudentProblem]) -> GradientMode:
        components = self.context.components
        modes = [components.build("gradient mode", entry.name, self.context)
                 for entry in components.gradient_modes if entry.obj.exact]
        choice = choose_exact_mode(probe(), modes)
        self.context.report(f"gradient mode: {choice.name} ({choice.reason}; --gradient-mode chooses another)")
        return next(mode for mode in modes if mode.name == choice.name)

    def run(self, problem: StudentProblem) -> MatchResult:
        raise RuntimeError("the gradient mode auto runs the mode it resolves to (GradientMode.resolve)")
