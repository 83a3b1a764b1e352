"""Adapters that put one component of our distillation into the public program (``vs_public.py --swap``).

The ablation of issue 20 asks which component, if any, makes our MTT/MCT differ from the public
code. Each adapter below replaces one component of the public ``distill.py`` /
``distill_compressed.py`` by ours while it runs through ``public_launcher.py``; the public files are
never edited: the adapters patch, in the launcher's process only, the functions the public script
calls, and only for calls made from the script itself (recognised by the caller's file name), so
the public ``utils``/``numpy``/``torch`` keep working for everything else. What each swap does:

``dsa``
    DSA sampling and application: the public ``utils.DiffAugment`` (its ``ParamDiffAug`` draws,
    reseeded per call when Siamese) is replaced by our ``DifferentiableAugmentation`` (kornia-based,
    one family per call, the same strengths), drawing from the same global torch stream.
``init``
    The synthetic set's initialisation: the public code draws its real images with numpy's unseeded
    stream; the swap overwrites them (when the images' optimizer is built) with the exact images our
    program starts from for the run's seed (same class order, same normalisation).
``segment``
    Start-epoch sampling: the public ``np.random.randint(0, max_start_epoch)`` (MTT) or
    ``np.random.uniform(0, max_start_epoch)`` (MCT) is answered by our sampler (``discrete`` or
    ``continuous``, built from our config) on a private stream seeded by the run's seed.
``minibatch``
    The minibatch order: the script's ``torch.randperm`` of the synthetic images is answered by our
    ``minibatch_schedule`` (the same shuffle-split-pop scheme) on a private seeded stream. At ipc=1
    with ``batch_syn`` = all images every step sees every image; only the order (and so which
    augmentation parameters meet which image) changes.
``optimizer``
    The optimiser and alpha handling: both programs update the images and alpha with SGD (momentum
    0.5; the learning rates as given); ours skips an update that would take alpha to <= 0 (alpha and
    its momentum keep their values). The swap adds that rule to the public update of alpha.
``expert-order``
    Expert loading order: both programs shuffle the files, then the experts of the loaded file, and
    use them in turn; the swap draws the script's ``random.shuffle`` permutations as our
    ``ExpertPool`` does (``torch.randperm``) on a private stream seeded by the run's seed.

The launcher reads a :class:`SwapSpec` from the JSON file named by ``DD_SWAP_SPEC`` and calls
:func:`install`; it reports how often each adapter answered (``swap_calls``), so a swap that never
took effect shows as 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

SWAP_NAMES = ("dsa", "init", "segment", "minibatch", "optimizer", "expert-order")


@dataclass(frozen=True)
class SwapSpec:
    """What the adapters need to know about the run they change."""

    swaps: tuple[str, ...]
    script: str  # the public script's path as the launcher runs it: its call sites are recognised by it
    seed: int
    method: str  # "mtt" (distill.py) or "mct" (distill_compressed.py)
    max_start_epoch: float
    expert_epochs: float
    iterations: int
    lr_teacher: float
    num_epochs: int  # epochs of the expert trajectories
    init_images: str | None = None  # the init swap: a torch file with our initial images
    plugin_options: dict = field(default_factory=dict)

    def to_json(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "SwapSpec":
        values = json.loads(Path(path).read_text())
        unknown = [name for name in values["swaps"] if name not in SWAP_NAMES]
        if unknown:
            raise ValueError(f"{path}: unknown swap(s) {', '.join(unknown)}; known: {', '.join(SWAP_NAMES)}")
        return cls(**{**values, "swaps": tuple(values["swaps"])})


class Patches:
    """Attribute replacements that :meth:`restore` undoes (in reverse order)."""

    def __init__(self) -> None:
        self._undo: list[tuple[object, str, object]] = []

    def set(self, owner: object, name: str, value: object) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def restore(self) -> None:
        while self._undo:
            owner, name, value = self._undo.pop()
            setattr(owner, name, value)


class PrivateStream:
    """A torch random stream of its own: draws made inside :meth:`active` neither use nor advance
    the global stream (the public program's draws stay what they would have been)."""

    def __init__(self, seed: int) -> None:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.state = torch.get_rng_state()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.state)
            try:
                yield
            finally:
                self.state = torch.get_rng_state()


def called_from(script: str, depth: int = 2) -> bool:
    """Whether the function ``depth`` frames up was called by code of ``script``."""
    return os.path.realpath(sys._getframe(depth).f_code.co_filename) == os.path.realpath(script)


def replace_for_script(spec: SwapSpec, patches: Patches, owner: object, name: str, answer: Callable) -> None:
    """``owner.name`` answers the public script's calls with ``answer``; other callers get the original."""
    original = getattr(owner, name)

    def call(*args, **kwargs):
        return answer(*args, **kwargs) if called_from(spec.script) else original(*args, **kwargs)

    patches.set(owner, name, call)


def our_config(spec: SwapSpec):
    """Our DistillConfig with the run's sampling settings (what our samplers read)."""
    from mct_plugin.harness.config import DistillConfig

    return DistillConfig(matcher=spec.method, max_start_epoch=spec.max_start_epoch, expert_epochs=spec.expert_epochs,
                         iterations=spec.iterations, lr_teacher=spec.lr_teacher, plugin_options=spec.plugin_options)


# -- the adapters -----------------------------------------------------------------------------------
def swap_dsa(spec: SwapSpec, patches: Patches, calls: dict) -> None:
    from mct_plugin.harness.augment import DifferentiableAugmentation

    augmentations: dict = {}

    def diff_augment(x, strategy="", seed=-1, param=None):
        if strategy in ("", "None", "none"):
            return x
        key = (tuple(x.shape[-2:]), strategy)
        if key not in augmentations:
            augmentations[key] = DifferentiableAugmentation(key[0], strategy).to(x.device)
        calls["dsa"] += 1
        return augmentations[key](x)

    patches.set(sys.modules["utils"], "DiffAugment", diff_augment)


def swap_init(spec: SwapSpec, patches: Patches, calls: dict) -> None:
    import torch

    if not spec.init_images:
        raise ValueError("the init swap needs init_images (our initial images for the run's seed)")
    ours = torch.load(spec.init_images, weights_only=True)
    original = torch.optim.SGD.__init__

    def init(self, params, *args, **kwargs):
        params = list(params)
        first = params[0] if params and isinstance(params[0], torch.Tensor) else None
        if first is not None and first.requires_grad and first.shape == ours.shape and not calls["init"]:
            with torch.no_grad():  # the synthetic images, just before their optimizer takes them
                first.copy_(ours)
            calls["init"] += 1
        original(self, params, *args, **kwargs)

    patches.set(torch.optim.SGD, "__init__", init)


def swap_segment(spec: SwapSpec, patches: Patches, calls: dict) -> None:
    import numpy as np

    from mct_plugin.harness.components import ComponentContext

    from .workloads import components

    name = "discrete" if spec.method == "mtt" else "continuous"
    sampler = components().build("sampler", name, ComponentContext(our_config(spec), components()))
    sampler.bind(spec.num_epochs)
    stream = PrivateStream(spec.seed)
    name = "randint" if spec.method == "mtt" else "uniform"

    def start_epoch(*args, **kwargs):
        with stream.active():
            segment = sampler.sample(calls["segment"])
        calls["segment"] += 1
        return int(segment.start) if name == "randint" else segment.start

    replace_for_script(spec, patches, np.random, name, start_epoch)


def swap_minibatch(spec: SwapSpec, patches: Patches, calls: dict) -> None:
    import torch

    from mct_plugin.harness.distill.gradient_modes import minibatch_schedule

    stream = PrivateStream(spec.seed)

    def order(n, *args, **kwargs):
        with stream.active():  # batch = n: the schedule's one chunk is the permutation
            (permutation,) = minibatch_schedule(int(n), int(n), 1)
        calls["minibatch"] += 1
        return permutation

    replace_for_script(spec, patches, torch, "randperm", order)


def swap_optimizer(spec: SwapSpec, patches: Patches, calls: dict) -> None:
    import torch

    original = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        alpha = self.param_groups[0]["params"][0]
        if not (alpha.dim() == 0 and alpha.requires_grad):
            return original(self, *args, **kwargs)
        calls["optimizer"] += 1
        before = alpha.detach().clone()
        momentum = self.state.get(alpha, {}).get("momentum_buffer")
        momentum = None if momentum is None else momentum.clone()
        result = original(self, *args, **kwargs)
        with torch.no_grad():
            if alpha <= 0:  # our rule: the update is skipped, alpha and its momentum keep their values
                alpha.copy_(before)
                if momentum is None:
                    self.state[alpha].pop("momentum_buffer", None)
                else:
                    self.state[alpha]["momentum_buffer"] = momentum
        return result

    patches.set(torch.optim.SGD, "step", step)


def swap_expert_order(spec: SwapSpec, patches: Patches, calls: dict) -> None:
    from mct_plugin.harness.experts.pool import ExpertPool

    stream = PrivateStream(spec.seed)

    def shuffle(items, *args, **kwargs):
        with stream.active():
            order = ExpertPool._shuffled(len(items))
        items[:] = [items[i] for i in order]
        calls["expert-order"] += 1

    replace_for_script(spec, patches, random, "shuffle", shuffle)


ADAPTERS: dict[str, Callable[[SwapSpec, Patches, dict], None]] = {
    "dsa": swap_dsa, "init": swap_init, "segment": swap_segment, "minibatch": swap_minibatch,
    "optimizer": swap_optimizer, "expert-order": swap_expert_order,
}
assert tuple(ADAPTERS) == SWAP_NAMES


def install(spec: SwapSpec, patches: Patches | None = None) -> tuple[Patches, dict]:
    """Install the adapters of ``spec.swaps``; returns the patches (``restore()`` undoes them) and
    the call counters (one per swap, updated while the program runs)."""
    patches = patches or Patches()
    calls = {name: 0 for name in spec.swaps}
    for name in spec.swaps:
        ADAPTERS[name](spec, patches, calls)
    return patches, calls
