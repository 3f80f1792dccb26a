"""Forget scenarios: which training samples are forgotten, and how evaluation splits follow.

Random forgetting follows the SalUn / l1-sparse protocol (a seeded `ratio` of the training split);
class, subclass and superclass forgetting follow the CIFAR-100 conventions in `methods.md`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch

from unlearnbench.config.checks import check_int, check_number
from unlearnbench.errors import ConfigError


class Scenario(ABC):
    """Selects the forget set. Subclasses set `name` and implement `forget_mask`."""

    name = "scenario"
    needs_coarse_labels = False
    classwise: ClassVar[bool] = False  # forgets whole class labels (`forgotten_classes` names them)

    def check(self, num_classes: int, has_coarse: bool, dataset: str) -> None:
        if self.needs_coarse_labels and not has_coarse:
            raise ConfigError(
                "forget",
                f"{self.name} (dataset={dataset})",
                "random or class; subclass and superclass need a dataset with coarse labels (cifar100)",
            )

    @abstractmethod
    def forget_mask(self, y: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        """Boolean mask over the training split: True = forget."""

    def forgotten_classes(self, coarse_of_fine: dict[int, int] | None) -> list[int] | None:
        """Fine classes removed entirely (class-wise scenarios), else None."""
        return None

    def keep_mask(self, y: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        """Samples that stay in retain / val / test (subclass forgetting narrows these)."""
        return torch.ones_like(y, dtype=torch.bool)

    def describe(self) -> dict:
        return {"scenario": self.name}


class RandomForget(Scenario):
    """Forget a seeded random `ratio` of the training split."""

    name = "random"

    def __init__(self, ratio: float, seed: int = 0):
        check_number("forget_ratio", ratio, 0.0, 1.0, low_open=True, high_open=True, hint="e.g. 0.1")
        self.ratio, self.seed = float(ratio), int(seed)

    def forget_mask(self, y, coarse):
        n = len(y)
        n_forget = max(1, int(round(self.ratio * n)))
        gen = torch.Generator().manual_seed(self.seed)
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=gen)[:n_forget]] = True
        return mask

    def describe(self):
        return {"scenario": self.name, "ratio": self.ratio, "classes": None}


class ClassForget(Scenario):
    """Forget every training sample of one or more classes."""

    name = "class"
    classwise = True

    def __init__(self, classes: Sequence[int] | int):
        self.classes = [int(c) for c in ([classes] if isinstance(classes, int) else classes)]
        if not self.classes:
            raise ConfigError("forget.classes", [], "a non-empty list of class indices, e.g. [0]")

    def check(self, num_classes, has_coarse, dataset):
        bad = [c for c in self.classes if not 0 <= c < num_classes]
        if bad:
            raise ConfigError(
                "forget.classes", self.classes, f"class indices 0..{num_classes - 1} ({dataset})"
            )

    def forget_mask(self, y, coarse):
        return torch.isin(y, torch.tensor(self.classes))

    def forgotten_classes(self, coarse_of_fine):
        return list(self.classes)

    def describe(self):
        return {"scenario": self.name, "ratio": None, "classes": list(self.classes)}


class SubclassForget(Scenario):
    """CIFAR-100: forget one fine class; retain / val / test keep only its superclass's other fine classes.

    Labels stay 100-way, as in the reference protocol.
    """

    name = "subclass"
    needs_coarse_labels = True
    classwise = True  # its one fine class is a whole class label (labels stay 100-way)

    def __init__(self, subclass: int):
        self.subclass = int(subclass)

    def check(self, num_classes, has_coarse, dataset):
        super().check(num_classes, has_coarse, dataset)
        check_int("forget.subclass", self.subclass, 0, num_classes - 1, hint="a fine class index")

    def forget_mask(self, y, coarse):
        return y == self.subclass

    def forgotten_classes(self, coarse_of_fine):
        return [self.subclass]

    def keep_mask(self, y, coarse):
        superclass = int(coarse[y == self.subclass][0])
        return coarse == superclass

    def describe(self):
        return {"scenario": self.name, "ratio": None, "classes": [self.subclass]}


class SuperclassForget(Scenario):
    """CIFAR-100: forget every fine class of one coarse class."""

    name = "superclass"
    needs_coarse_labels = True
    classwise = True  # every fine class of the superclass, each a whole class label

    def __init__(self, superclass: int):
        self.superclass = int(superclass)

    def check(self, num_classes, has_coarse, dataset):
        super().check(num_classes, has_coarse, dataset)
        check_int("forget.superclass", self.superclass, 0, 19, hint="a coarse class index")

    def forget_mask(self, y, coarse):
        return coarse == self.superclass

    def forgotten_classes(self, coarse_of_fine):
        return sorted(f for f, c in (coarse_of_fine or {}).items() if c == self.superclass)

    def describe(self):
        return {"scenario": self.name, "ratio": None, "superclass": self.superclass, "classes": None}


# Every scenario's name, and those that forget whole classes (for methods that only work class by class).
SCENARIOS = tuple(s.name for s in Scenario.__subclasses__())
CLASSWISE = tuple(s.name for s in Scenario.__subclasses__() if s.classwise)
