"""Run any model from a flat parameter vector (torch.func), shared by matchers and evaluation.

Expert checkpoints are lists of tensors in ``model.parameters()`` order; the student of a
distillation iteration is one flat vector that is updated by differentiable SGD steps. This
module converts between the two and evaluates the network with ``torch.func.functional_call``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torch.func import functional_call

from ..errors import BufferFormatError


class FunctionalModel:
    """A stateless view of ``module``: ``model(flat_params, x) -> logits``.

    Buffers (e.g. BatchNorm running statistics) are taken from ``module`` and are not part of
    the flat vector, matching the MTT buffer format (parameters only).
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        named = list(module.named_parameters())
        self.names = [name for name, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.num_params = sum(self.numels)
        for p in module.parameters():
            p.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def __len__(self) -> int:
        return len(self.names)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``flat`` shaped like the module's parameters, keyed by name."""
        pieces = torch.split(flat, self.numels)
        return {name: piece.view(shape) for name, piece, shape in zip(self.names, pieces, self.shapes)}

    def flatten(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """One flat float32 vector from tensors in parameter order (shapes are checked)."""
        self.check_shapes(tensors)
        return torch.cat([t.reshape(-1).to(torch.float32) for t in tensors])

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The inverse of :meth:`flatten`: a list of tensors in parameter order."""
        return [piece.view(shape) for piece, shape in zip(torch.split(flat, self.numels), self.shapes)]

    def check_shapes(self, tensors: Sequence[torch.Tensor], where: str = "checkpoint") -> None:
        """Raise :class:`BufferFormatError` unless ``tensors`` fit the model's parameters."""
        if len(tensors) != len(self.shapes):
            raise BufferFormatError(f"{where} has {len(tensors)} tensors, the model has {len(self.shapes)} parameters")
        for index, (tensor, shape) in enumerate(zip(tensors, self.shapes)):
            if tuple(tensor.shape) != shape:
                raise BufferFormatError(
                    f"{where}, parameter {index} ({self.names[index]}): shape {tuple(tensor.shape)}, "
                    f"the model expects {shape}"
                )

    def initial_flat(self) -> torch.Tensor:
        """The module's own (initial) parameters as a flat vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.module.parameters()]).clone()

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        state = self.unflatten(flat)
        state.update(dict(self.module.named_buffers()))
        return functional_call(self.module, state, (x,))
