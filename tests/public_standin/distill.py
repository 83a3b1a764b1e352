"""A stand-in for the public MTT ``distill.py`` in the tests of ``benchmarks/public_launcher.py``.

It makes, from this file, the calls that the launcher's swaps answer (``utils.DiffAugment``,
``np.random.randint`` for the start epoch, ``torch.randperm`` for the minibatch, ``random.shuffle``
for the expert order, the SGD optimizers of the images and of the step size) and the calls it
captures (``evaluate_synset`` at the evaluation points), around a loss of our own: a
distillation-shaped program, not the public one.
"""

import argparse
import os
import random

import numpy as np
import torch
import wandb
from utils import DiffAugment, evaluate_synset, get_dataset, get_network

parser = argparse.ArgumentParser()
for name, kind, default in [("dataset", str, "FashionMNIST"), ("model", str, "ConvNet"), ("ipc", int, 1),
                            ("syn_steps", int, 2), ("expert_epochs", int, 1), ("max_start_epoch", int, 2),
                            ("lr_img", float, 100.0), ("lr_lr", float, 1e-5), ("lr_teacher", float, 0.01),
                            ("Iteration", int, 3), ("eval_it", int, 3), ("num_eval", int, 1),
                            ("epoch_eval_train", int, 2), ("buffer_path", str, "buffers"), ("data_path", str, "data"),
                            ("dsa_strategy", str, "color_crop_cutout_flip_scale_rotate")]:
    parser.add_argument(f"--{name}", type=kind, default=default)
args = parser.parse_args()
args.dsa = True
channel, im_size, num_classes, _, _, _, dst_train, _, testloader, _, _, _ = get_dataset(args.dataset, args.data_path)
wandb.init(config=args)

labels = torch.arange(num_classes).repeat_interleave(args.ipc)
chosen = {c: [] for c in range(num_classes)}
for image, label in dst_train:  # the first ipc images of every class
    if len(chosen[int(label)]) < args.ipc:
        chosen[int(label)].append(image)
    if all(len(images) == args.ipc for images in chosen.values()):
        break
image_syn = torch.stack([image for c in range(num_classes) for image in chosen[c]]).detach().requires_grad_(True)
syn_lr = torch.tensor(args.lr_teacher).requires_grad_(True)
optimizer_img = torch.optim.SGD([image_syn], lr=args.lr_img, momentum=0.5)
optimizer_lr = torch.optim.SGD([syn_lr], lr=args.lr_lr, momentum=0.5)

folder = os.path.join(args.buffer_path, args.dataset, args.model)
files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("replay_buffer_") and f.endswith(".pt"))
random.shuffle(files)
buffer = torch.load(files[0])
random.shuffle(buffer)
for it in range(args.Iteration + 1):
    if it % args.eval_it == 0:
        for it_eval in range(args.num_eval):
            args.lr_net = syn_lr.item()
            evaluate_synset(it_eval, get_network(args.model, channel, num_classes, im_size), image_syn.detach().clone(),
                            labels.clone(), testloader, args)
    start_epoch = np.random.randint(0, args.max_start_epoch)
    expert = buffer[it % len(buffer)]
    target = expert[start_epoch + args.expert_epochs]
    distance = sum(float((a - b).pow(2).sum()) for a, b in zip(expert[start_epoch], target))
    loss = 0.0
    for step in range(args.syn_steps):
        order = torch.randperm(len(image_syn))
        augmented = DiffAugment(image_syn[order], args.dsa_strategy)
        loss = loss + (syn_lr * augmented.mean() - 0.01 * distance) ** 2
    optimizer_img.zero_grad()
    optimizer_lr.zero_grad()
    loss.backward()
    optimizer_img.step()
    optimizer_lr.step()
    wandb.log({"Grand_Loss": loss.detach(), "Start_Epoch": start_epoch})
