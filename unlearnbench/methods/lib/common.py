"""Building blocks shared by methods: the SGD methods' base, an epoch loop with progress and divergence checks,
an endless batch stream, the L1 norm."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, repeat

import torch
from torch import nn
from tqdm.auto import tqdm

from unlearnbench.errors import UserError
from unlearnbench.methods.base import Method, UnlearnContext
from unlearnbench.progress import EpochLines


class DivergedError(RuntimeError):
    """The loss or the weights became NaN or infinite."""


def import_torch_optim() -> None:
    """A process's first torch.optim optimiser imports torch._dynamo (~1.5 s on a CPU); `Unlearning` imports it
    before its timer starts, so a method's time does not depend on whether it ran first in its process."""
    import torch._dynamo  # noqa: F401


def sgd(params, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4) -> torch.optim.SGD:
    """torch.optim.SGD over the trainable ones of `params`."""
    trainable = [p for p in params if p.requires_grad]
    return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)


class EpochLoss:
    """An epoch's losses summed on the device and read once, at its end: reading each step's loss (to check
    it, to show it) would make the host wait for the GPU every step."""

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.steps = 0

    def add(self, loss: torch.Tensor) -> None:
        value = loss.detach().float()
        self.total = value if self.total is None else self.total + value
        self.steps += 1

    def mean(self, where: str) -> float:
        """The mean loss of the epoch's steps; DivergedError if one of them was not finite."""
        if self.total is None:
            return float("nan")
        value = float(self.total) / self.steps
        if not math.isfinite(value):
            raise DivergedError(f"non-finite loss ({value}) in {where}")
        return value


def check_weights_finite(model: nn.Module, where: str) -> None:
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise DivergedError(f"non-finite weights in {name} after {where}")


def endless(batches, what: str) -> Iterator:
    """One stream over `batches` that restarts (and so reshuffles) whenever it is exhausted.

    `what` names the batches in the error raised when there are none (a stream of nothing never ends).
    """
    if len(batches) == 0:
        raise UserError(f"{what} is empty: there are no batches to draw from")
    return chain.from_iterable(repeat(batches))


def l1_norm(module: nn.Module) -> torch.Tensor:
    """||theta||_1 over `module`'s trainable parameters (weights, biases, BN affine): an unnormalised sum."""
    return sum(p.abs().sum() for p in module.parameters() if p.requires_grad)


def descend(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    model: nn.Module | None = None,
    after_backward: Callable[[nn.Module], None] | None = None,
) -> None:
    """One optimiser step on `loss`: clear the gradients, backpropagate, let `after_backward(model)` edit the
    gradients (e.g. saliency masks), step. Every fine-tuning loop here steps this way (methods, the relearning
    attack)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if after_backward is not None:
        after_backward(model)
    optimizer.step()


def train_epochs(
    model: nn.Module,
    epochs: int,
    batches: Iterable,
    step_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    ctx: UnlearnContext,
    desc: str,
    scheduler=None,
    after_backward: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """Run `epochs` passes: for each batch, `loss = step_loss(model, x, y)`, backward, step.

    `batches` is re-iterated each epoch (a `TensorBatches` reshuffles itself); `after_backward` may
    edit gradients (e.g. saliency masks).
    The model's train/eval mode is the caller's choice and is left as it is.
    """
    total = len(batches) * epochs
    lines = None if ctx.runtime.progress else EpochLines(desc, epochs)
    with tqdm(total=total, desc=desc, disable=not ctx.runtime.progress, leave=False) as bar:
        for epoch in range(epochs):
            epoch_loss = EpochLoss()
            for x, y in batches:
                with ctx.runtime.autocast():
                    loss = step_loss(model, x, y)
                epoch_loss.add(loss)
                descend(optimizer, loss, model, after_backward)
                bar.update(1)
            mean = epoch_loss.mean(f"{desc} epoch {epoch}")
            bar.set_postfix(loss=f"{mean:.4f}")
            if lines is not None:
                lines.update(epoch, loss=mean)
            if scheduler is not None:
                scheduler.step()
    check_weights_finite(model, desc)
    return model


@dataclass(eq=False)
class SGDMethod(Method):
    """A method that unlearns by SGD epochs (FT, GA, RL, SalUn, BE, l1-sparse, Boundary Shrink, IMU): the
    optimiser options every one of them has (conf/method/_sgd.yaml holds their shared defaults).

    A dataclass, so a subclass declares only its own options, as fields (checks in `__post_init__`), and its
    constructor's signature still lists every option for the config check.
    """

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    augment: bool = True

    def sgd(self, params, weight_decay: float | None = None) -> torch.optim.SGD:
        """The method's SGD over `params` (`weight_decay` overrides the configured one, e.g. 0 under a mask)."""
        decay = self.weight_decay if weight_decay is None else weight_decay
        return sgd(params, self.lr, self.momentum, decay)

    def sgd_epochs(self, model: nn.Module, split, loss, ctx: UnlearnContext, desc: str) -> nn.Module:
        """`epochs` passes over `split` in train mode, minimising `loss(model, x, y)` with SGD."""
        model.train()
        opt = self.sgd(model.parameters())
        batches = ctx.batches(split, self.batch_size, shuffle=True, augment=self.augment)
        return train_epochs(model, self.epochs, batches, loss, opt, ctx, desc)
