"""CIFAR-style AlexNet, VGG-11 and ResNet-18 as used for cross-architecture evaluation in the
dataset-distillation literature (instance norm by default; ``BN`` variants use batch norm).

Single-channel 28x28 inputs get the same first-layer padding as the public code (to 32x32);
the classifier input is computed from the actual feature map, so other sizes work too.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F



def _norm(kind: str, channels: int) -> nn.Module:
    return nn.GroupNorm(channels, channels, affine=True) if kind == "instancenorm" else nn.BatchNorm2d(channels)


def _feature_count(features: nn.Module, channels: int, image_size: tuple[int, int]) -> int:
    with torch.no_grad():
        was_training = features.training
        features.eval()
        count = features(torch.zeros(1, channels, *image_size)).flatten(1).shape[1]
        features.train(was_training)
    return count


class AlexNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=5, stride=1, padding=4 if channels == 1 else 2),
            nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 192, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(192, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 192, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(192, 192, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        )
        self.fc = nn.Linear(_feature_count(self.features, channels, image_size), num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int],
                 layers=VGG11_LAYERS, norm: str = "instancenorm") -> None:
        super().__init__()
        modules: list[nn.Module] = []
        c = channels
        for i, spec in enumerate(layers):
            if spec == "M":
                modules.append(nn.MaxPool2d(2, 2))
                continue
            padding = 3 if channels == 1 and i == 0 else 1
            modules += [nn.Conv2d(c, spec, kernel_size=3, padding=padding), _norm(norm, spec), nn.ReLU()]
            c = spec
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Linear(_feature_count(self.features, channels, image_size), num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          _norm(norm, planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instancenorm") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(norm, 64)
        layers, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(in_planes, planes, stride, norm), BasicBlock(planes, planes, 1, norm)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


FACTORIES = {
    "AlexNet": AlexNet,
    "VGG11": VGG,
    "VGG11BN": lambda c, n, s: VGG(c, n, s, norm="batchnorm"),
    "ResNet18": ResNet18,
    "ResNet18BN": lambda c, n, s: ResNet18(c, n, s, norm="batchnorm"),
}


def factory(name: str):
    """The factory of ``name`` (one of :data:`.catalog.CIFAR_NETS`)."""
    return FACTORIES[name]
