"""Running under ``torchrun``: process groups and the few collectives the harness needs.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; a command that runs under torchrun
joins the process group once (:func:`process_group`: gloo on CPU, NCCL when CUDA is available)
and hands the :class:`DistContext` it gets to everything that shards work or calls a
collective. Library functions take that context as an argument whose default is
:data:`SINGLE_PROCESS`, whose collectives are no-ops: a caller that passes no context gets a
single-process run, whatever the environment says. This module imports torch only where a
process group is joined or used, so that a command line without one stays quick.

What is distributed (see the README, "Scaling out"):

* ``experts`` - the files of the run's plan are dealt round-robin to the ranks; each expert keeps
  the seed it has in a single-process run, so the union of the files is the same;
* ``distill`` - every rank draws the whole meta-batch of segments from the run's one stream and
  matches its share of them (``--meta-batch`` M: M / world size each); the gradients of the
  synthetic images and of alpha are averaged with ``all_reduce`` before the optimizer step, so all
  ranks keep identical synthetic data and the run does not depend on the number of processes;
  rank 0 alone writes outputs and checkpoints;
* ``eval`` - the evaluation networks (and the architectures of a table) are dealt to the ranks and
  gathered on rank 0.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DistContext:
    """This process's place among the processes of one command, and the collectives among them.

    Every collective must be called by every rank, in the same order; in a single process
    (``world_size`` 1) each one returns its input and communicates nothing.
    """

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

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In place: the mean of ``tensor`` over all ranks."""
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(self.world_size)
        return tensor

    def any_rank(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (e.g. a stop request)."""
        if not self.enabled:
            return flag
        import torch
        import torch.distributed as dist

        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather_objects(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def map_sharded(self, items: Sequence[T], work: Callable[[int, T], R]) -> list[R]:
        """``[work(i, item) for each item]``, the items dealt to the ranks and the results gathered.

        Every rank returns the full list in item order; item ``i`` is computed by rank
        ``i % world_size`` (the whole list in a single process), so results never depend on the
        sharding as long as ``work`` depends only on ``i`` and ``item``.
        """
        mine = {i: work(i, item) for i, item in self.shard(items)}
        merged = {i: result for part in self.gather_objects(mine) for i, result in part.items()}
        return [merged[i] for i in range(len(items))]

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank is here."""
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


SINGLE_PROCESS = DistContext()
"""The context of a process that shares its work with no other."""

_TORN_DOWN = False  # this process destroyed a process group: its exit skips the interpreter's teardown


def join_process_group() -> DistContext:
    """This process's context: under torchrun (``WORLD_SIZE`` > 1) the default process group is
    initialised (once per process); otherwise :data:`SINGLE_PROCESS`. Leave the group with
    :func:`leave_process_group`, or use :func:`process_group`, which does both."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE_PROCESS
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return SINGLE_PROCESS
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":  # "cuda" now means this rank's GPU (see runtime.devices)
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def leave_process_group(context: DistContext, *, together: bool = False) -> None:
    """Destroy the process group that ``context`` was joined in (nothing in a single process).

    :param together: first wait at a barrier until every rank is here. Use it when the command
        succeeded: a gloo rank that tears down its process group and exits while a peer is still
        working (rank 0 writing outputs) can abort in gloo's threads at interpreter exit
        ("terminate called without an active exception"; seen in about 1 of 15 CPU runs). After
        an error, do not wait: the other ranks may never arrive, and torchrun stops them.
    """
    global _TORN_DOWN
    if not context.enabled:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()
        _TORN_DOWN = True


@contextmanager
def process_group() -> Iterator[DistContext]:
    """Join the process group for the block (:func:`join_process_group`) and leave it after:
    together when the block succeeded, at once when it raised."""
    context = join_process_group()
    succeeded = False
    try:
        yield context
        succeeded = True
    finally:
        leave_process_group(context, together=succeeded)


def exit_process(code: int) -> None:
    """End a command-line process with ``code``. After a process group was destroyed, skip the
    interpreter's teardown (``os._exit`` once the streams and logs are flushed): gloo's threads can
    still abort there ("terminate called without an active exception", SIGABRT; about 1 in 10 CPU
    runs even after the barrier of :func:`leave_process_group`). Every output is written and
    closed by then."""
    if _TORN_DOWN:
        import logging
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)

