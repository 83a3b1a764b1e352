"""How the matching loss is differentiated through the student's N SGD steps.

The student starts at ``theta_0`` and takes ``N`` steps on synthetic minibatches::

    theta_{i+1} = theta_i - alpha * g_i,   g_i = grad_theta CE(f(theta_i, A_i(X[b_i])), y[b_i])

and the objective depends on ``theta_N`` only. Three modes compute ``dL/dX`` and ``dL/dalpha``:

``unrolled`` (exact)
    Backpropagation through all N steps (MTT). Memory grows with N: the graph of every step,
    including what its double-backward needs, is kept until the end.

``checkpointed`` (exact)
    Reverse accumulation with per-step recomputation. The forward pass keeps only the parameter
    vectors ``theta_i`` (every ``k``-th one for large models) and each step's minibatch and
    augmentation parameters. Going backwards from ``lam_N = dL/dtheta_N``, step ``i`` is rebuilt
    with a graph and one vector-Jacobian product of ``g_i`` with ``lam_{i+1}`` with respect to
    ``(theta_i, X_i)`` gives the Hessian-vector product ``h`` and ``v_X``; then::

        dL/dX_i += -alpha * v_X,   lam_i = lam_{i+1} - alpha * h,   dL/dalpha += -g_i . lam_{i+1}

    Equal to ``unrolled`` up to float rounding. Memory: ``(N/k + k) * |theta|`` floats plus one
    step's graph, i.e. nearly flat in N, and a minibatch of more than ``MAX_PIECE`` images is
    differentiated in pieces (its loss is a mean: the gradient is the size-weighted sum of the
    pieces'), so the graph is that of one piece unless the model has batch statistics; time: one
    more forward/backward per step than ``unrolled`` (two more between sparse checkpoints, ``k > 1``).

``first-order`` (approximate; formerly ``constant-memory``)
    The gradient of TESLA (Cui et al., ICML 2023) and of the public MCT code. Because
    ``theta_N = theta_0 - alpha * sum_i g_i``, the gradient of the pixels used at step i is taken
    as ``-alpha * v^T dg_i/dX`` with ``v = dL/dtheta_N``: a first pass (no graph) computes
    ``sum_i g_i`` and ``v``; a second pass replays each step and takes that vector-Jacobian
    product. **Dropped terms:** each ``g_i`` is differentiated with ``theta_i`` held fixed, i.e. the
    Hessian-propagated terms ``-alpha * sum_{j>i} H_j dtheta_j/dX`` (``H_j = dg_j/dtheta_j``) are
    dropped from ``dL/dX``, and ``dL/dalpha`` keeps only ``-v^T sum_i g_i``. These terms are
    O(alpha^2 * N * |H|); for ``syn_steps = 1`` it equals the exact modes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from ..augment import AugmentParams, DifferentiableAugmentation
from ..components import ComponentContext
from ..models import FunctionalModel
from ..options import NoOptions
from ..runtime.precision import FP32, autocast
from .mode_options import CheckpointedOptions

# checkpointed: keep every theta_i while the N stored vectors take at most this many bytes, else
# every k-th one with k ~ sqrt(N) (memory (N/k + k)|theta| is smallest there)
DENSE_CHECKPOINT_BYTES = 256 * 2**20
# checkpointed: a larger minibatch is differentiated in pieces of this many images (one piece's
# graph at a time), where pieces are exact: no layer mixes the images of a batch (batch statistics)
MAX_PIECE = 128


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


@dataclass
class StudentStep:
    """What replays step i exactly: its minibatch and its augmentation parameters (or None)."""

    index: torch.Tensor
    augment: AugmentParams | None


def draw_steps(image_shape: torch.Size | tuple[int, ...], batch_syn: int, syn_steps: int,
               augment: DifferentiableAugmentation | None) -> list[StudentStep]:
    """Every student step's minibatch and augmentation parameters for a set of ``image_shape``
    (N, C, H, W), drawn from torch's global generators: the schedule first, then one augmentation
    per step (the distillation loop calls it inside its stream, :mod:`.draws`)."""
    schedule = minibatch_schedule(image_shape[0], batch_syn, syn_steps)
    return [StudentStep(index, None if augment is None else augment.sample((len(index), *image_shape[1:])))
            for index in schedule]


@dataclass
class StudentProblem:
    """The inner problem of one distillation iteration.

    :param start: flat parameters ``theta_0`` (no gradient).
    :param objective: ``L(theta_N)``, a scalar tensor function of the flat final parameters.
    :param images: the synthetic images, a leaf tensor (their gradient is returned).
    :param labels: class indices (N,) or soft labels (N, classes), not differentiated.
    :param lr: the learnable student step size alpha, a scalar leaf tensor.
    :param steps: the ``syn_steps`` minibatches and augmentation parameters, drawn by the caller
        (a gradient mode draws nothing); ``None`` draws them here, from torch's global generators.
    :param precision: of the student's forward passes (:mod:`~..runtime.precision`); its
        parameters, the images, alpha and the returned gradients stay float32.
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
    steps: list[StudentStep] | None = None
    precision: str = FP32

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = draw_steps(self.images.shape, self.batch_syn, self.syn_steps, self.augment)
        elif len(self.steps) != self.syn_steps:
            raise ValueError(f"{len(self.steps)} drawn steps for syn_steps={self.syn_steps}")


def step_inputs(p: StudentProblem, pixels: torch.Tensor, step: StudentStep) -> torch.Tensor:
    """The augmented minibatch of ``step`` taken from ``pixels`` (differentiable w.r.t. them)."""
    x = pixels[step.index]
    return x if step.augment is None else p.augment.apply(x, step.augment)


def mixes_the_batch(module: torch.nn.Module) -> bool:
    """Whether an image's output depends on the other images of its batch (batch normalisation)."""
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)
    return any(isinstance(m, norms) for m in module.modules())


def student_gradient(p: StudentProblem, w: torch.Tensor, x: torch.Tensor, index: torch.Tensor,
                     create_graph: bool) -> torch.Tensor:
    """``g = grad_w CE(f(w, x), y[index])`` (``w`` must require grad), the forward pass at
    ``p.precision``."""
    with autocast(p.precision, w.device):
        ce = F.cross_entropy(p.model(w, x), p.labels[index])
    (g,) = torch.autograd.grad(ce, w, create_graph=create_graph)
    return g


class GradientMode(ABC):
    """How one iteration's loss is differentiated; built as every component, ``cls(options, context)``.

    Subclasses set ``exact`` (whether the gradient equals backpropagation through every step) and
    implement :meth:`run`; their name, description, former names and ``Options`` are stated once,
    in their declaration (:class:`~mct_plugin.harness._registry.Lazy`). An exact mode declares its
    memory (:meth:`memory_bytes`) and its time relative to ``unrolled`` (``relative_time``), from
    which ``auto`` chooses.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type] = NoOptions
    exact: ClassVar[bool] = False
    relative_time: ClassVar[float] = 1.0
    chooses: ClassVar[bool] = False  # resolves to one of the exact modes (auto)

    def __init__(self, options=None, context: ComponentContext | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.context = context

    def resolve(self, probe: Callable[[], StudentProblem]) -> "GradientMode":
        """The mode that runs the iterations: this one (``auto`` chooses another, measuring one step
        of ``probe()``, a problem shaped like the run's)."""
        return self

    def memory_bytes(self, problem: StudentProblem, step_bytes: int) -> int | None:
        """Bytes this mode keeps alive for ``problem``, given that one step's graph takes
        ``step_bytes``; None where the mode does not say."""
        return None

    @abstractmethod
    def run(self, problem: StudentProblem) -> MatchResult:
        """Roll the student out and return the loss and the gradients of images and alpha."""


class Unrolled(GradientMode):
    exact = True

    def memory_bytes(self, problem: StudentProblem, step_bytes: int) -> int:
        return (problem.syn_steps + 1) * step_bytes  # every step's graph, and about one more for the backward

    def run(self, problem: StudentProblem) -> MatchResult:
        p = problem
        w = p.start.detach().requires_grad_(True)
        for step in p.steps:
            g = student_gradient(p, w, step_inputs(p, p.images, step), step.index, create_graph=True)
            w = w - p.lr * g
        loss = p.objective(w)
        images_grad, lr_grad = torch.autograd.grad(loss, [p.images, p.lr])
        return MatchResult(float(loss.detach()), images_grad, lr_grad)


class Checkpointed(GradientMode):
    """The exact gradient by reverse accumulation (see the module docstring).

    Its option ``checkpoint_interval``: keep every k-th parameter vector and recompute the steps
    between (1: keep all); 0 chooses it per problem: 1 while the ``N`` vectors fit in
    ``DENSE_CHECKPOINT_BYTES``, else ``ceil(sqrt(N))``.

    :param piece: differentiate a minibatch larger than this in pieces of this many images (the
        step's gradient is the size-weighted sum of the pieces' mean losses' gradients, so one
        piece's graph is alive at a time); ``None``: never. Not applied to models with batch
        statistics, whose pieces would not be exact.
    """

    exact = True
    relative_time = 1.3

    def __init__(self, options: CheckpointedOptions | None = None, context: ComponentContext | None = None, *,
                 piece: int | None = MAX_PIECE) -> None:
        super().__init__(options if options is not None else CheckpointedOptions(), context)
        if self.options.checkpoint_interval < 0:
            raise ValueError(f"checkpoint interval must be >= 1 (or 0: automatic), got "
                             f"{self.options.checkpoint_interval}")
        if piece is not None and piece < 1:
            raise ValueError(f"piece size must be >= 1, got {piece}")
        self.interval, self.piece = self.options.checkpoint_interval or None, piece

    def memory_bytes(self, problem: StudentProblem, step_bytes: int) -> int:
        k = self.interval_for(problem)
        vector = problem.start.numel() * problem.start.element_size()
        return (math.ceil(problem.syn_steps / k) + k) * vector + step_bytes

    def interval_for(self, problem: StudentProblem) -> int:
        if self.interval is not None:
            return self.interval
        n = problem.syn_steps
        stored = n * problem.start.numel() * problem.start.element_size()
        return 1 if stored <= DENSE_CHECKPOINT_BYTES else math.ceil(math.sqrt(n))

    def pieces_for(self, problem: StudentProblem, size: int) -> list[slice] | None:
        """The pieces a minibatch of ``size`` images is differentiated in (``None``: at once)."""
        if self.piece is None or size <= self.piece or mixes_the_batch(problem.model.module):
            return None
        return [slice(start, min(start + self.piece, size)) for start in range(0, size, self.piece)]

    def _advance(self, p: StudentProblem, w: torch.Tensor, pixels: torch.Tensor, step: StudentStep,
                 alpha: torch.Tensor) -> torch.Tensor:
        """theta_{i+1} from theta_i without a graph (the same arithmetic as ``unrolled``)."""
        w = w.detach().requires_grad_(True)
        with torch.no_grad():
            x = step_inputs(p, pixels, step)
        pieces = self.pieces_for(p, len(step.index))
        if pieces is None:
            g = student_gradient(p, w, x, step.index, create_graph=False)
        else:
            g = sum((sl.stop - sl.start) / len(x) * student_gradient(p, w, x[sl], step.index[sl], create_graph=False)
                    for sl in pieces)
        return (w - alpha * g).detach()

    def _step_vjp(self, p: StudentProblem, w: torch.Tensor, step: StudentStep, pixels: torch.Tensor,
                  lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(g, H^T lam, (dg/dX)^T lam)`` of one step at ``w`` (a leaf requiring grad)."""
        x_raw = pixels[step.index].requires_grad_(True)
        x = x_raw if step.augment is None else p.augment.apply(x_raw, step.augment)
        pieces = self.pieces_for(p, len(step.index))
        if pieces is None:
            g = student_gradient(p, w, x, step.index, create_graph=True)
            hvp, x_grad = torch.autograd.grad(g, [w, x_raw], grad_outputs=lam)
            return g.detach(), hvp, x_grad
        # one piece's graph at a time; the augmentation's (small) graph is pulled back once at the end
        x_leaf = x.detach().requires_grad_(True)
        g, hvp, leaf_grad = torch.zeros_like(w), torch.zeros_like(w), torch.zeros_like(x_leaf)
        for sl in pieces:
            share = (sl.stop - sl.start) / len(x_leaf)
            g_piece = student_gradient(p, w, x_leaf[sl], step.index[sl], create_graph=True)
            hvp_piece, x_piece = torch.autograd.grad(g_piece, [w, x_leaf], grad_outputs=lam)
            g += share * g_piece.detach()
            hvp += share * hvp_piece
            leaf_grad += share * x_piece
        if x is x_raw:
            return g, hvp, leaf_grad
        (x_grad,) = torch.autograd.grad(x, x_raw, grad_outputs=leaf_grad)
        return g, hvp, x_grad

    def run(self, problem: StudentProblem) -> MatchResult:
        p = problem
        alpha, pixels = p.lr.detach(), p.images.detach()
        steps = p.steps
        n, k = len(steps), self.interval_for(p)
        buffers = dict(p.model.module.named_buffers())  # BatchNorm statistics: left as unrolled leaves them
        # forward: keep theta_i at every k-th step
        kept: dict[int, torch.Tensor] = {}
        w = p.start.detach()
        for i, step in enumerate(steps):
            if i % k == 0:
                kept[i] = w
            w = self._advance(p, w, pixels, step, alpha)
        after_forward = {name: b.clone() for name, b in buffers.items()}
        theta_n = w.requires_grad_(True)
        loss = p.objective(theta_n)
        (lam,) = torch.autograd.grad(loss, theta_n)
        # backward, one segment of k steps at a time, last segment first
        images_grad = torch.zeros_like(pixels)
        lr_grad = torch.zeros((), dtype=alpha.dtype, device=alpha.device)
        for first in reversed(range(0, n, k)):
            thetas = [kept.pop(first)]
            for i in range(first, min(first + k, n) - 1):  # recompute the segment's thetas
                thetas.append(self._advance(p, thetas[-1], pixels, steps[i], alpha))
            for i in reversed(range(first, first + len(thetas))):
                step = steps[i]
                g, hvp, x_grad = self._step_vjp(p, thetas.pop().requires_grad_(True), step, pixels, lam)
                lr_grad -= torch.dot(g, lam)
                images_grad.index_add_(0, step.index, -alpha * x_grad)
                lam = lam - alpha * hvp
        with torch.no_grad():
            for name, value in after_forward.items():
                buffers[name].copy_(value)
        return MatchResult(float(loss.detach()), images_grad, lr_grad.reshape(p.lr.shape))


class FirstOrder(GradientMode):
    def run(self, problem: StudentProblem) -> MatchResult:
        p = problem
        alpha = p.lr.detach()
        pixels = p.images.detach()
        steps = p.steps
        # pass 1: the trajectory without a graph
        w, grad_sum = p.start.detach(), torch.zeros_like(p.start)
        for step in steps:
            with torch.no_grad():
                x = step_inputs(p, pixels, step)
            g = student_gradient(p, w.detach().requires_grad_(True), x, step.index, create_graph=False)
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
        for step in steps:
            x_raw = pixels[step.index].requires_grad_(True)
            x = x_raw if step.augment is None else p.augment.apply(x_raw, step.augment)
            w_leaf = w.detach().requires_grad_(True)
            g = student_gradient(p, w_leaf, x, step.index, create_graph=True)
            (gx,) = torch.autograd.grad(g, x_raw, grad_outputs=cotangent)
            images_grad.index_add_(0, step.index, gx)
            w = (w_leaf - alpha * g).detach()
        return MatchResult(float(loss.detach()), images_grad, lr_grad)


