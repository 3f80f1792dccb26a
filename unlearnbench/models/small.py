"""Small models for the embedded default and tests: a CNN and an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unlearnbench.config.checks import check_choice
from unlearnbench.models.common import Classifier, Normalize


class SmallCNN(Classifier):
    """Two conv blocks with batch norm, global pooling and a linear head: trains in seconds on CPU."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        width: int = 32,
        image_size: int | None = None,  # pooling is adaptive
    ):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(8 * width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))


class MLP(Classifier):
    """Fully connected network on flattened images (the Mnemonic paper's MNIST model is 784-1000-10, sigmoid)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        hidden: Sequence[int] = (1000,),
        activation: str = "sigmoid",
    ):
        super().__init__()
        activations = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
        check_choice("model.activation", activation, sorted(activations))
        self.normalize = Normalize(mean, std)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size * image_size
        for h in hidden:
            layers += [nn.Linear(width, h), activations[activation]()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalize(x))
