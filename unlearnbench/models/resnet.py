"""ResNet-18, CIFAR variant (He et al., CVPR 2016): 3x3 stem, no max-pool, as used by SalUn / IMU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unlearnbench.models.common import Classifier, Normalize


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(Classifier):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        width: int = 64,
        image_size: int | None = None,  # accepted for a uniform model signature; pooling is adaptive
    ):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, in_planes = [], width
        for i, blocks in enumerate([2, 2, 2, 2]):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            for b in range(blocks):
                layers.append(BasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(self.normalize(x))))
        return torch.flatten(self.pool(self.layers(out)), 1)


class TorchvisionResNet18(Classifier):
    """torchvision's `resnet18(num_classes=...)`, ImageNet stem (7x7 stride-2 conv, then a 3x3 max-pool), randomly
    initialised: the model of ∇τ's CIFAR-10 notebooks (Trippa et al., arXiv 2403.14339). On 32x32 images the stem
    leaves 8x8 maps, so it is faster and less accurate than the CIFAR variant above.

    Normalisation is inside the model as for every model here; a first conv for `in_channels` other than 3.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        image_size: int | None = None,  # accepted for a uniform model signature; pooling is adaptive
    ):
        super().__init__()
        from torchvision.models import resnet18

        self.normalize = Normalize(mean, std)
        self.body = resnet18(num_classes=num_classes)
        if in_channels != 3:
            self.body.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.head = self.body.fc
        self.body.fc = nn.Identity()  # the head is applied by Classifier.forward

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))
