"""Running under ``torchrun``: process groups and the few collectives the harness needs.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`context` reads them and
initialises the default process group once (gloo on CPU, NCCL when CUDA is available). Outside
torchrun, everything degrades to a single process and the collectives are no-ops, so library code
calls them unconditionally.

What is distributed (see the README, "Scaling out"):

* ``experts`` - the files of the run's plan are dealt round-robin to the ranks; each expert keeps
  the seed it has in a single-process run, so the union of the files is the same;
* ``distill`` - every rank samples its own segment and expert (its own RNG stream); the gradients
  of the synthetic images and of alpha are averaged with ``all_reduce`` before the optimizer step,
  so all ranks keep identical synthetic data; rank 0 alone writes outputs and checkpoints;
* ``eval`` - the evaluation networks (and the architectures of a table) are dealt to the ranks and
  gathered on rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """The (index, item) pairs this rank handles: items ``rank, rank + world, ...``."""
        return [(i, item) for i, item in enumerate(items) if i % self.world_size == self.rank]


_CONTEXT: DistContext | None = None
_TORN_DOWN = False  # a process group was destroyed in this process (see exit_process)


def context() -> DistContext:
    """The process's rank and world size, initialising the process group under torchrun."""
    global _CONTEXT
    if _CONTEXT is not None:
        return _CONTEXT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and torch.distributed.is_available():
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
            dist.init_process_group(backend=backend)
        _CONTEXT = DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    else:
        _CONTEXT = DistContext()
    return _CONTEXT


def shutdown(*, together: bool = False) -> None:
    """Destroy the process group (if any) and forget the context.

    :param together: first wait at a barrier until every rank is here. Use it when the command
        succeeded: a gloo rank that tears down its process group and exits while a peer is still
        working (rank 0 writing outputs) can abort in gloo's threads at interpreter exit
        ("terminate called without an active exception"; seen in about 1 of 15 CPU runs). After
        an error, do not wait: the other ranks may never arrive, and torchrun stops them.
    """
    global _CONTEXT, _TORN_DOWN
    if _CONTEXT is not None and _CONTEXT.enabled and torch.distributed.is_initialized():
        if together:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        _TORN_DOWN = True
    _CONTEXT = None


def exit_process(code: int) -> None:
    """End a command-line process with ``code``. After a process group was destroyed, skip the
    interpreter's teardown (``os._exit`` once the streams and logs are flushed): gloo's threads can
    still abort there ("terminate called without an active exception", SIGABRT; about 1 in 10 CPU
    runs even after the barrier of :func:`shutdown`). Every output is written and closed by then."""
    if _TORN_DOWN:
        import logging
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def all_reduce_mean_(tensor: torch.Tensor) -> torch.Tensor:
    """In place: the mean of ``tensor`` over all ranks (identity in a single process)."""
    ctx = context()
    if ctx.enabled:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        tensor.div_(ctx.world_size)
    return tensor


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (e.g. a stop request)."""
    ctx = context()
    if not ctx.enabled:
        return flag
    device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a single process)."""
    ctx = context()
    if not ctx.enabled:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def map_sharded(items: Sequence[T], work: Callable[[int, T], R]) -> list[R]:
    """``[work(i, item) for each item]``, the items dealt to the ranks and the results gathered.

    Every rank returns the full list in item order; item ``i`` is computed by rank
    ``i % world_size`` (the whole list in a single process), so results never depend on the
    sharding as long as ``work`` depends only on ``i`` and ``item``.
    """
    mine = {i: work(i, item) for i, item in context().shard(items)}
    merged = {i: result for part in gather_objects(mine) for i, result in part.items()}
    return [merged[i] for i in range(len(items))]


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    ctx = context()
    if not ctx.enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if context().enabled:
        torch.distributed.barrier()


def stream_seed(seed: int, rank: int) -> int:
    """Seed of the sampling stream of ``rank`` (segments, minibatches, augmentation draws)."""
    return (seed * 7_919 + 104_729 * (rank + 1)) % (2**63 - 1)
