"""A stand-in for the public MTT/MCT ``utils.py`` in the tests of ``benchmarks/public_launcher.py``:
the names and signatures that the launcher and the distillation scripts use, with small bodies of
our own (the public code is not part of this project and is not available offline)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ParamDiffAug:
    """The public augmentation settings object (unused by the stand-in's augmentation)."""


def DiffAugment(x, strategy="", seed=-1, param=None):  # noqa: N802 (the public name)
    """A recognisable augmentation: a horizontal flip (a swapped-in DSA does something else)."""
    return x if strategy in ("", "none", "None") else x.flip(3)


def get_dataset(dataset, data_path, batch_size=1, subset=None, args=None):
    raise NotImplementedError("the launcher gives the stand-in its Fashion-MNIST branch")


def get_network(model, channel, num_classes, im_size=(32, 32), dist=True):
    return nn.Sequential(nn.Flatten(), nn.Linear(channel * im_size[0] * im_size[1], num_classes))


def epoch(mode, dataloader, net, optimizer, criterion, args, aug, texture=False):
    """One pass over ``dataloader`` (the launcher times it; the stand-in's evaluation does not use it)."""
    return 0.0, 0.0


def evaluate_synset(it_eval, net, images_train, labels_train, testloader, args, return_loss=False, texture=False):
    """Train ``net`` on the set for ``args.epoch_eval_train`` steps, test on two test batches."""
    optimizer = torch.optim.SGD(net.parameters(), lr=float(args.lr_net), momentum=0.9)
    for _ in range(int(args.epoch_eval_train)):
        inputs = DiffAugment(images_train, args.dsa_strategy) if args.dsa else images_train
        loss = F.cross_entropy(net(inputs), labels_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    correct = total = 0
    with torch.no_grad():
        for batch, (images, labels) in enumerate(testloader):
            correct += int((net(images).argmax(1) == labels).sum())
            total += len(labels)
            if batch == 1:
                break
    return net, [0.0], correct / total
