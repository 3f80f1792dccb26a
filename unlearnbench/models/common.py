"""Pieces every model shares: input normalisation inside the model, and the features/head split."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """Maps [0, 1] images to standardised inputs, so data can stay uint8 on the device."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module, ABC):
    """A classifier split as `head(features(x))`, with `head` a plain `nn.Linear`.

    Influence-based methods (IMU) need the penultimate features and the linear head separately.
    """

    head: nn.Linear

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the head's input), shape [batch, head.in_features]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
