"""The method interface: a method declares the splits it needs and receives only those."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from unlearnbench.data.batches import Augment
from unlearnbench.data.scenarios import SCENARIOS
from unlearnbench.data.splits import Split, Splits
from unlearnbench.runtime import Runtime

GRANTABLE = ("forget", "retain", "val")

Stream = str | tuple[str | int, ...]  # a random stream's name: "retain", ("influence", 2), ...


def derive_seed(seed: int, *names: str | int) -> int:
    """An independent 63-bit seed for the random stream `names` of run seed `seed`.

    A hash, not `seed * 1000 + offset`: streams of different names or run seeds never overlap, and adding
    a stream cannot shift another one.
    """
    digest = hashlib.sha256(json.dumps([int(seed), *names]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class SplitAccessError(PermissionError):
    """A method touched a split it did not declare in `needs`."""


class GrantedSplits:
    """The splits a method declared, and nothing else: any other attribute access raises."""

    def __init__(self, splits: Splits, needs: frozenset[str], method: str):
        unknown = set(needs) - set(GRANTABLE)
        if unknown:
            raise ValueError(
                f"method {method} declares unknown splits {sorted(unknown)}; allowed: {GRANTABLE}"
            )
        self._granted = {name: getattr(splits, name) for name in needs}
        self._method = method
        self.num_classes = splits.num_classes

    def __getattr__(self, name: str) -> Split:
        granted = self.__dict__.get("_granted", {})
        if name in granted:
            return granted[name]
        raise SplitAccessError(
            f"method {self.__dict__.get('_method')} did not declare split {name!r}; "
            f"it declared {sorted(granted)} (set `needs` on the method class)"
        )


@dataclass
class TrainingHook:
    """Changes how the ORIGINAL model is trained (e.g. Mnemonic codes mixed into batches).

    `spec` enters the original model's cache key; `state` (tensors) is saved with the checkpoint and
    handed back to the method at unlearning time; `apply` edits each augmented training batch.
    """

    spec: dict
    state: dict[str, torch.Tensor]
    apply: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class UnlearnContext:
    """What a method may use besides its granted data: where to compute, seeds, and helpers."""

    runtime: Runtime
    seed: int
    num_classes: int
    forget_ratio: float  # |D_f| / |D_train|
    forget_classes: list[int] | None
    augment: Augment
    train_from_scratch: Callable[[Split], nn.Module] | None = None  # original recipe, cached
    hook_state: dict[str, torch.Tensor] = field(default_factory=dict)
    log: Callable[[dict[str, Any]], None] = lambda metrics: None

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    def seed_for(self, *names: str | int) -> int:
        """The seed of the run's random stream `names` (e.g. "labels", or ("influence", round))."""
        return derive_seed(self.seed, *names)

    def batches(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool = True,
        augment: bool = False,
        stream: Stream | None = None,
        drop_last: bool = False,
    ):
        """Batches of `split` on the compute device, shuffled and augmented by the random stream `stream`.

        The stream defaults to the split's name; a method that draws two batch streams from one split
        names them apart.
        """
        names = (stream,) if isinstance(stream, str) else stream or (split.name,)
        return self.runtime.batches(
            split.x,
            split.y,
            batch_size=batch_size,
            shuffle=shuffle,
            augment=self.augment if augment else None,
            seed=self.seed_for(*names),
            drop_last=drop_last,
        )


class Method(ABC):
    """An unlearning method. Subclasses set `needs` and implement `unlearn`.

    Hyperparameters are constructor arguments, filled from `conf/method/<name>.yaml` by Hydra.
    """

    needs: ClassVar[frozenset[str]] = frozenset()
    # The forget scenarios (conf/forget/) the method handles; the config check, tuning, the results table,
    # the tests and the README's method table all read it.
    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS

    def training_hook(
        self, seed: int, sample_shape: tuple[int, ...], num_classes: int
    ) -> TrainingHook | None:
        """Return a hook to change the original model's training, or None (the default)."""
        return None

    @abstractmethod
    def unlearn(self, model: nn.Module, data: GrantedSplits, ctx: UnlearnContext) -> nn.Module:
        """Return the unlearned model (it may modify `model`, which is a private copy)."""
