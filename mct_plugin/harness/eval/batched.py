"""Train the ``num_eval`` evaluation networks together with ``torch.func.vmap``.

The networks are stacked (``torch.func.stack_module_state``) and trained in lockstep: one
vmapped forward/backward per step instead of ``num_eval``, which turns many small convolutions
into a few larger ones. Each network keeps its own initialisation (the same seeds as the
sequential protocol), its own minibatch order and its own augmentation parameters; the only
difference from :func:`.protocol.evaluate_set` is that, per step, all networks draw their DSA
family together (parameters stay independent per image). Models with BatchNorm buffers are
evaluated sequentially (running statistics cannot be updated in place under ``vmap``).
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from ..augment import DifferentiableAugmentation
from ..config import EvalSettings
from ..data import RealDataset
from .._registry import ModelRegistry
from ..runtime.precision import autocast
from .protocol import EvalResult, evaluate_set, learning_rate_schedule, network_seed

log = logging.getLogger(__name__)


def _fresh_networks(model_name: str, data: RealDataset, config: EvalSettings,
                    models: ModelRegistry) -> list[torch.nn.Module]:
    nets = []
    for i in range(config.num_eval):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(network_seed(config.seed, i))
            nets.append(models.create(model_name, data.spec.channels, data.num_classes, data.spec.image_size)
                        .to(data.device))
    return nets


def evaluate_set_batched(images: torch.Tensor, labels: torch.Tensor, lr: float, data: RealDataset,
                         model_name: str, config: EvalSettings, *, models: ModelRegistry) -> EvalResult:
    """Same protocol as :func:`.protocol.evaluate_set`, all networks trained in one vmap."""
    nets = _fresh_networks(model_name, data, config, models)
    if any(True for _ in nets[0].buffers()):
        log.info("%s has buffers (BatchNorm): evaluating its networks one after the other", model_name)
        return evaluate_set(images, labels, lr, data, model_name, config, models=models)
    images, labels = images.detach().to(data.device), labels.detach().to(data.device)
    count = len(nets)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(network_seed(config.seed, 0) + 7919)
        params, _ = stack_module_state(nets)
        base = copy.deepcopy(nets[0]).to("meta")
        for net in nets:
            net.train()
        base.train()

        def forward(p, x):
            return functional_call(base, p, (x,))

        batched = vmap(forward)
        leaves = list(params.values())
        for leaf in leaves:
            leaf.requires_grad_(True)
        augment = DifferentiableAugmentation(data.spec.image_size, config.dsa_strategy).to(data.device) \
            if config.dsa else None
        n = len(images)
        optimizer = None
        for rate in learning_rate_schedule(float(lr), config.epoch_eval_train):
            if optimizer is None or rate != optimizer.param_groups[0]["lr"]:
                optimizer = torch.optim.SGD(leaves, lr=rate, momentum=config.momentum,
                                            weight_decay=config.weight_decay)
            orders = torch.stack([torch.randperm(n) for _ in range(count)])  # each network its own order
            pass_loss = torch.zeros(count)  # per network: the sum of its samples' losses in this pass
            for start in range(0, n, config.batch_train):
                index = orders[:, start:start + config.batch_train]
                x, y = images[index], labels[index]  # (count, b, ...)
                if augment is not None:
                    flat = augment(x.reshape(-1, *x.shape[2:]))
                    x = flat.reshape(x.shape)
                with autocast(config.eval_precision, data.device):
                    logits = batched(params, x)
                    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1, *y.shape[2:]),
                                             reduction="none").reshape(count, -1)
                pass_loss += losses.detach().sum(1).cpu()
                loss = losses.sum() / index.shape[1]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # sum over networks: each network gets its own mean-loss gradient
                optimizer.step()
        correct = torch.zeros(count)
        with torch.no_grad():
            base.eval()
            for start in range(0, len(data.test_images), 256):
                x = data.test_images[start:start + 256]
                with autocast(config.eval_precision, data.device):
                    logits = vmap(forward, in_dims=(0, None))(params, x)
                correct += (logits.argmax(-1) == data.test_labels[start:start + 256]).sum(1).float().cpu()
    return EvalResult(model_name, (correct / len(data.test_images)).tolist(), train_losses=(pass_loss / n).tolist())
