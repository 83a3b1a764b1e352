"""How the matching loss is differentiated through the student's N SGD steps.

The student starts at ``theta_0`` and takes ``N`` steps on synthetic minibatches::

    theta_{i+1} = theta_i - alpha * g_i,   g_i = grad_theta CE(f(theta_i, A_i(X[b_i])), y[b_i])

and the objective depends on ``theta_N`` only. Two modes compute ``dL/dX`` and ``dL/dalpha``:

``unrolled``
    Exact backpropagation through all N steps (MTT). Memory grows with N: the graph of every
    step, including its double-backward, is kept until the end.

``constant-memory``
    TESLA (Cui et al., ICML 2023). Because ``theta_N = theta_0 - alpha * sum_i g_i``, the
    gradient of the pixels used at step i is ``-alpha * v^T dg_i/dX`` with ``v = dL/dtheta_N``.
    A first pass (no graph) computes ``sum_i g_i`` and ``v``; a second pass replays each step
    (same minibatch, same augmentation parameters) and takes that vector-Jacobian product.
    Memory does not grow with N. **Dropped terms:** each ``g_i`` is differentiated with
    ``theta_i`` held fixed, i.e. the Hessian-propagated terms
    ``-alpha * sum_{j>i} H_j dtheta_j/dX`` (``H_j = dg_j/dtheta_j``) are dropped from ``dL/dX``,
    and ``dL/dalpha`` keeps only ``-v^T sum_i g_i`` (dropping ``-alpha v^T sum_j H_j
    dtheta_j/dalpha``). These terms are O(alpha^2 * N * |H|); for ``syn_steps = 1`` both modes
    agree exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from ..augment import DifferentiableAugmentation
from ..models import FunctionalModel


@dataclass
class StudentProblem:
    """The inner problem of one distillation iteration.

    :param start: flat parameters ``theta_0`` (no gradient).
    :param objective: ``L(theta_N)``, a scalar tensor function of the flat final parameters.
    :param images: the synthetic images, a leaf tensor (their gradient is returned).
    :param labels: class indices (N,) or soft labels (N, classes), not differentiated.
    :param lr: the learnable student step size alpha, a scalar leaf tensor.
    """

    model: FunctionalModel
    start: torch.Tensor
    objective: Callable[[torch.Tensor], torch.Tensor]
    images: torch.Tensor
    labels: torch.Tensor
    lr: torch.Tensor
    syn_steps: int
    batch_syn: int
    augment: DifferentiableAugmentation | None = None


@dataclass
class MatchResult:
    """Loss value and the gradients of the synthetic images and of alpha."""

    loss: float
    images_grad: torch.Tensor
    lr_grad: torch.Tensor


def minibatch_schedule(num_images: int, batch_syn: int, steps: int) -> list[torch.Tensor]:
    """Index sets of the ``steps`` student minibatches (MTT order: shuffled, split, popped)."""
    chunks: list[torch.Tensor] = []
    schedule = []
    for _ in range(steps):
        if not chunks:
            chunks = list(torch.split(torch.randperm(num_images), batch_syn))
        schedule.append(chunks.pop())
    return schedule


class GradientMode(ABC):
    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def run(self, problem: StudentProblem) -> MatchResult:
        """Roll the student out and return the loss and the gradients of images and alpha."""


class Unrolled(GradientMode):
    name = "unrolled"
    description = "exact backpropagation through all student steps (memory grows with syn_steps)"

    def run(self, problem: StudentProblem) -> MatchResult:
        p = problem
        w = p.start.detach().requires_grad_(True)
        for index in minibatch_schedule(len(p.images), p.batch_syn, p.syn_steps):
            x = p.images[index]
            if p.augment is not None:
                x = p.augment(x)
            ce = F.cross_entropy(p.model(w, x), p.labels[index])
            (g,) = torch.autograd.grad(ce, w, create_graph=True)
            w = w - p.lr * g
        loss = p.objective(w)
        images_grad, lr_grad = torch.autograd.grad(loss, [p.images, p.lr])
        return MatchResult(float(loss.detach()), images_grad, lr_grad)


class ConstantMemory(GradientMode):
    name = "constant-memory"
    description = "TESLA: per-step recomputation, memory independent of syn_steps (drops Hessian terms)"

    def _step_grad(self, p: StudentProblem, w: torch.Tensor, x: torch.Tensor, index: torch.Tensor,
                   create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        w = w.detach().requires_grad_(True)
        ce = F.cross_entropy(p.model(w, x), p.labels[index])
        (g,) = torch.autograd.grad(ce, w, create_graph=create_graph)
        return w, g

    def run(self, problem: StudentProblem) -> MatchResult:
        p = problem
        alpha = p.lr.detach()
        pixels = p.images.detach()
        schedule = minibatch_schedule(len(pixels), p.batch_syn, p.syn_steps)
        replay = []
        # pass 1: the trajectory without a graph; remember each step's augmentation parameters
        w, grad_sum = p.start.detach(), torch.zeros_like(p.start)
        for index in schedule:
            x = pixels[index]
            if p.augment is not None:
                with torch.no_grad():
                    x = p.augment(x)
                replay.append(p.augment.last_params)
            _, g = self._step_grad(p, w, x, index, create_graph=False)
            grad_sum += g
            w = w - alpha * g
        # objective at theta_N = theta_0 - alpha * G: its value, v = dL/dtheta_N and dL/dalpha
        theta_n = (p.start.detach() - alpha * grad_sum).requires_grad_(True)
        loss = p.objective(theta_n)
        (v,) = torch.autograd.grad(loss, theta_n)
        lr_grad = -(v * grad_sum).sum().reshape(p.lr.shape)
        # pass 2: replay step i and pull -alpha * v back to the pixels it used
        images_grad = torch.zeros_like(pixels)
        cotangent = -alpha * v
        w = p.start.detach()
        for i, index in enumerate(schedule):
            x_raw = pixels[index].requires_grad_(True)
            x = p.augment(x_raw, params=replay[i]) if p.augment is not None else x_raw
            w_leaf, g = self._step_grad(p, w, x, index, create_graph=True)
            (gx,) = torch.autograd.grad(g, x_raw, grad_outputs=cotangent)
            images_grad.index_add_(0, index, gx)
            w = (w_leaf - alpha * g).detach()
        return MatchResult(float(loss.detach()), images_grad, lr_grad)


BUILTIN_GRADIENT_MODES = [Unrolled, ConstantMemory]

