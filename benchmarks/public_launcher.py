"""Runs a script of the public MTT or MCT code unmodified, on this machine, for ``vs_public.py``.

Usage: ``python -m benchmarks.public_launcher PUBLIC_REPO SCRIPT IPC [SCRIPT ARGS...]``. The public
code is not part of this project: its files are read, never written, never copied. This launcher
only stubs what cannot run offline or on a CPU, and records what the comparison needs:

* ``wandb`` is replaced by a module that keeps what the script logs (``Grand_Loss``, ...) in
  memory (no account, no network);
* ``utils.get_dataset`` gets a Fashion-MNIST branch (it has none), through torchvision's
  ``FashionMNIST`` class on the folder given as ``--data_path``;
* ``Tensor.cuda`` is a no-op (the code saves images through ``.cuda()``);
* the ConvNet flattens with ``reshape`` (its ``view`` fails on torch >= 2.x CPU tensors);
* the time of every synthetic-image optimizer step and of every pass of ``utils.epoch`` is
  recorded;
* with ``DD_CAPTURE_DIR=DIR`` set, the script's evaluation is replaced by saving the synthetic set
  it would evaluate (``DIR/eval_<k>.pt``: images, labels, lr), so that ``vs_public.py`` evaluates
  every program's sets with the protocols it chooses (the distillation itself is untouched);
* with ``DD_SWAP_SPEC=FILE`` set, one or more of our components replace the public ones while the
  script runs (the ablation; :mod:`benchmarks.public_swaps` says what each swap does);
* the script runs in a scratch folder (it writes ``logged_files/`` into its working directory),
  never in the public checkout.

``SCRIPT`` = ``evaluate_synset`` runs no script: it evaluates a saved set (``--set FILE``, a torch
file with images, labels and lr) with the public ``utils.evaluate_synset``, unmodified, as the
public distillation scripts call it: ``--num_eval`` fresh ``utils.get_network(--model)`` networks,
``--epoch_eval_train`` epochs, the learned lr, batch_train 256, and the augmentation the public
distillation uses for Fashion-MNIST (their defaults: DSA on with the full strategy, no ZCA).

The script's own output is discarded; one JSON line with the timings and logs (or the accuracies)
is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import runpy
import sys
import tempfile
import time
import types

import torch
from torchvision import datasets, transforms

EVALUATE = "evaluate_synset"
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
public, script, ipc = sys.argv[1], sys.argv[2], int(sys.argv[3])
capture = os.environ.get("DD_CAPTURE_DIR")
swap_spec = os.environ.get("DD_SWAP_SPEC")
sys.path.insert(0, public)
sys.path.insert(1, PROJECT)  # this project's adapters (and its library) for DD_SWAP_SPEC
logged: list[dict] = []


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


wandb = types.ModuleType("wandb")
wandb.config = types.SimpleNamespace(_items={})
wandb.run = types.SimpleNamespace(name="cpu")


def _init(*args, config=None, **kwargs):
    wandb.config._items = dict(vars(config))


def _log(values, step=None, **kwargs):
    numbers = {k: _number(v) for k, v in values.items() if _number(v) is not None}
    if numbers:
        logged.append({"step": step, **numbers})


wandb.init, wandb.log = _init, _log
wandb.Histogram = wandb.Image = wandb.finish = lambda *args, **kwargs: None
sys.modules["wandb"] = wandb
torch.Tensor.cuda = lambda self, *args, **kwargs: self

import networks  # noqa: E402  (the public code's modules, found on sys.path)
import utils  # noqa: E402


def fashion_mnist(dataset, data_path, batch_size=1, subset=None, args=None):
    mean, std = [0.2860], [0.3530]
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    train = datasets.FashionMNIST(data_path, train=True, download=False, transform=to_tensor)
    test = datasets.FashionMNIST(data_path, train=False, download=False, transform=to_tensor)
    loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False)
    identity = {c: c for c in range(10)}
    return 1, (28, 28), 10, train.classes, mean, std, train, test, loader, None, identity, identity


utils.get_dataset = fashion_mnist


def convnet_forward(self, x):
    features = self.features(x)
    return self.classifier(features.reshape(len(features), -1))


networks.ConvNet.forward = convnet_forward

stamps: list[float] = []
sgd_step = torch.optim.SGD.step


def timed_step(self, *args, **kwargs):
    result = sgd_step(self, *args, **kwargs)
    first = self.param_groups[0]["params"][0]
    if first.dim() == 4 and first.shape[0] == 10 * ipc:  # the synthetic images, not a network
        stamps.append(time.perf_counter())
    return result


torch.optim.SGD.step = timed_step

epochs: list[tuple[str, float]] = []  # (mode, seconds) of every pass of utils.epoch over the data
utils_epoch = utils.epoch


def timed_epoch(mode, *args, **kwargs):
    start = time.perf_counter()
    result = utils_epoch(mode, *args, **kwargs)
    epochs.append((mode, time.perf_counter() - start))
    return result


utils.epoch = timed_epoch

captured: list[str] = []
if capture:
    def capture_set(it_eval, net, images_train, labels_train, testloader, args, return_loss=False, texture=False):
        if it_eval == 0:  # one set per evaluation point (the script evaluates it num_eval times)
            path = os.path.join(capture, f"eval_{len(captured)}.pt")
            torch.save({"images": images_train.detach().cpu().clone(), "labels": labels_train.detach().cpu().clone(),
                        "lr": float(args.lr_net)}, path)
            captured.append(path)
        return net, [0.0], 0.0

    utils.evaluate_synset = capture_set



def peak_rss_mb() -> float:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) / 1024


def evaluate_saved_set(argv: list[str]) -> dict:
    """The public ``evaluate_synset`` on a saved set, called as the public distillation calls it."""
    parser = argparse.ArgumentParser(prog=f"public_launcher.py REPO {EVALUATE} IPC")
    parser.add_argument("--set", required=True, help="torch file with images, labels and lr")
    parser.add_argument("--model", default="ConvNet")
    parser.add_argument("--num_eval", type=int, default=5)
    parser.add_argument("--epoch_eval_train", type=int, default=1000)
    parser.add_argument("--batch_train", type=int, default=256)
    parser.add_argument("--data_path", required=True)
    # the public distillation scripts' defaults (what they evaluate Fashion-MNIST sets with)
    parser.add_argument("--dsa", default="True", choices=["True", "False"])
    parser.add_argument("--dsa_strategy", default="color_crop_cutout_flip_scale_rotate")
    options = parser.parse_args(argv)
    saved = torch.load(options.set, weights_only=True)
    args = types.SimpleNamespace(dataset="FashionMNIST", device="cpu", dsa=options.dsa == "True",
                                 dsa_strategy=options.dsa_strategy, dsa_param=utils.ParamDiffAug(), dc_aug_param=None,
                                 zca=False, texture=False, epoch_eval_train=options.epoch_eval_train,
                                 batch_train=options.batch_train, lr_net=float(saved["lr"]))
    channel, im_size, num_classes, *_, testloader, _, _, _ = utils.get_dataset("FashionMNIST", options.data_path, 256,
                                                                              None, args=args)
    args.im_size = im_size
    accs, started = [], time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        for it_eval in range(options.num_eval):
            net = utils.get_network(options.model, channel, num_classes, im_size)
            _, _, acc = utils.evaluate_synset(it_eval, net, saved["images"].clone(), saved["labels"].clone(),
                                              testloader, args)
            accs.append(float(acc))
    return {"accs": accs, "seconds": time.perf_counter() - started, "model": options.model,
            "num_eval": options.num_eval, "epoch_eval_train": options.epoch_eval_train, "peak_rss_mb": peak_rss_mb()}


if script == EVALUATE:
    print(json.dumps(evaluate_saved_set(sys.argv[4:])))
    sys.exit(0)

swap_calls: dict = {}
if swap_spec:
    from benchmarks.public_swaps import SwapSpec, install  # noqa: E402

    _, swap_calls = install(SwapSpec.from_json(swap_spec))
os.chdir(capture or tempfile.mkdtemp(prefix="public-run-"))
sys.argv = [script, *sys.argv[4:]]
with contextlib.redirect_stdout(io.StringIO()):
    runpy.run_path(os.path.join(public, script), run_name="__main__")
seconds = [b - a for a, b in zip(stamps, stamps[1:])]
print(json.dumps({"seconds": seconds, "epochs": epochs, "peak_rss_mb": peak_rss_mb(), "logged": logged,
                  "captured": captured, "swap_calls": swap_calls}))
