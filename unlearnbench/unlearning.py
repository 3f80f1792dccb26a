"""Applying a method: to a private copy of a model, with only the splits the method declared, timed alone."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearnbench.data.batches import Augment
from unlearnbench.data.splits import Split, Splits
from unlearnbench.methods.base import GrantedSplits, Method, UnlearnContext
from unlearnbench.methods.lib.common import import_torch_optim
from unlearnbench.runtime import Runtime, sync


class MethodLog:
    """A method's diagnostics (`ctx.log`) go to the run's logger (CSV, W&B), one step per call."""

    def __init__(self, logger=None):
        self.logger, self.step = logger, 0

    def __call__(self, values: dict[str, Any]) -> None:
        if self.logger is None:
            return
        numbers = {
            f"method/{k}": float(v)
            for k, v in values.items()
            if isinstance(v, (int, float, bool)) or (torch.is_tensor(v) and v.numel() == 1)
        }
        if numbers:
            self.logger.log_metrics(numbers, step=self.step)
            self.step += 1


@dataclass
class Unlearning:
    """One method of a run, applied to the run's original model or, for shadow-model metrics, to others."""

    method: Method
    name: str
    runtime: Runtime
    augment: Augment
    # (split, seed) -> a model trained from scratch on the split with the run's recipe, cached (Retrain's way)
    train_from_scratch: Callable[[Split, int], nn.Module]
    log: Callable[[dict[str, Any]], None] = field(default_factory=MethodLog)

    def context(self, splits: Splits, seed: int, hook_state: dict) -> UnlearnContext:
        return UnlearnContext(
            runtime=self.runtime,
            seed=seed,
            num_classes=splits.num_classes,
            forget_ratio=len(splits.forget) / len(splits.train),
            forget_classes=splits.forget_classes,
            augment=self.augment,
            hook_state=hook_state,
            train_from_scratch=lambda split: self.train_from_scratch(split, seed),
            log=self.log,
        )

    def __call__(
        self, original: nn.Module, splits: Splits, seed: int, hook_state: dict
    ) -> tuple[nn.Module, float]:
        """(the method applied to a private copy of `original`, granted only its declared splits; seconds)."""
        model = copy.deepcopy(original)
        granted = GrantedSplits(splits, self.method.needs, self.name)
        ctx = self.context(splits, seed, hook_state)
        import_torch_optim()  # outside the timer: a process's first optimiser imports torch._dynamo
        sync(self.runtime.device)
        start = time.perf_counter()
        model = self.method.unlearn(model, granted, ctx)
        sync(self.runtime.device)
        return model, time.perf_counter() - start
