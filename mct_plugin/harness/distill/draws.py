"""The random stream a distillation owns (DESIGN.md section 9).

Every random draw of an iteration (the segment, the expert, the student's minibatches and the
augmentation parameters of every student step) is made from one :class:`RandomStream` by the loop,
before anything is computed; the gradient computation draws nothing. So the exact gradient modes
give the same run up to float rounding, an evaluation between two iterations (which trains
networks from torch's global generator) cannot move the stream, and a checkpoint that stores the
stream's state continues it bit for bit. Every process of a run owns the same stream and draws
the whole meta-batch, so the segments do not depend on how many processes share the work.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

# the stream is seeded apart from the initialisation of the synthetic set (which uses the seed itself)
STREAM_SALT = 0x5EED_57EA


class RandomStream:
    """A torch generator state of the run's own. Inside :meth:`drawing`, torch's global CPU
    generator (and the CUDA one of ``device``) *is* this stream, so components and kornia, which draw
    from the global generators, draw from it; afterwards the global generators are as they were.

    :param seed: the run's seed.
    :param device: a CUDA device whose generator the draws may also use (kornia samples some
        parameters on the augmentation's device); ignored on the CPU.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self.cuda = device if device.type == "cuda" else None
        stream_seed = (seed ^ STREAM_SALT) % 2**63
        self.state = {"cpu": torch.Generator().manual_seed(stream_seed).get_state()}
        if self.cuda is not None:
            generator = torch.Generator(device=self.cuda).manual_seed(stream_seed)
            self.state["cuda"] = generator.get_state()

    @contextlib.contextmanager
    def drawing(self) -> Iterator[None]:
        """Within the block, torch's global generators continue this stream."""
        devices = [self.cuda] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.state["cpu"])
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.state["cuda"], self.cuda)
            yield
            self.state = {"cpu": torch.get_rng_state()}
            if self.cuda is not None:
                self.state["cuda"] = torch.cuda.get_rng_state(self.cuda)

    def state_dict(self) -> dict:
        return {name: state.clone() for name, state in self.state.items()}

    def load_state_dict(self, state: dict) -> None:
        expected = {"cpu", "cuda"} if self.cuda is not None else {"cpu"}
        if set(state) != expected:
            raise ValueError(f"its random stream holds {sorted(state)}, this run needs {sorted(expected)} "
                             f"(resume on the same kind of device)")
        self.state = {name: torch.as_tensor(value, dtype=torch.uint8).clone() for name, value in state.items()}


def share_of(rank: int, world_size: int, meta_batch: int) -> range:
    """The segments (indices into the meta-batch) that process ``rank`` matches: a contiguous
    block of ``meta_batch / world_size`` (the caller has checked that it divides)."""
    size = meta_batch // world_size
    return range(rank * size, (rank + 1) * size)
