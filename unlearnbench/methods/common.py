"""Building blocks shared by methods: the SGD optimiser, an epoch loop with progress and divergence checks,
an endless batch stream, the L1 norm."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat

import torch
from torch import nn
from torch.optim.sgd import sgd as sgd_update
from tqdm.auto import tqdm

from unlearnbench.errors import UserError
from unlearnbench.methods.base import UnlearnContext
from unlearnbench.progress import EpochLines


class DivergedError(RuntimeError):
    """The loss or the weights became NaN or infinite."""


class SGD:
    """torch.optim.SGD with momentum and weight decay (no dampening, no Nesterov), updated by torch's own SGD
    kernel, `torch.optim.sgd.sgd`: the same weights, bit for bit.

    Not a torch.optim.Optimizer because building the first one in a process imports torch._dynamo, which
    takes about 1.5 s on a CPU, a fifth of a cached default run. Methods with Adam still pay it.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        buffers = [self.momentum_buffers[i] for i in live]
        sgd_update(
            [self.params[i] for i in live],
            [self.params[i].grad for i in live],
            buffers,  # the kernel creates the missing ones in place
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
        )
        for i, buffer in zip(live, buffers):
            self.momentum_buffers[i] = buffer


def import_torch_optim() -> None:
    """For methods built on a torch.optim optimiser, from their __init__: a process's first one imports
    torch._dynamo (~1.5 s on a CPU). Imported when the method is built, it stays out of the timed unlearning,
    so a method's time does not depend on whether it ran first in its process."""
    import torch._dynamo  # noqa: F401


def sgd(params, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4) -> SGD:
    return SGD([p for p in params if p.requires_grad], lr=lr, momentum=momentum, weight_decay=weight_decay)


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


def train_epochs(
    model: nn.Module,
    epochs: int,
    batches: Iterable,
    step_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: SGD | torch.optim.Optimizer,
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
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if after_backward is not None:
                    after_backward(model)
                optimizer.step()
                bar.update(1)
            mean = epoch_loss.mean(f"{desc} epoch {epoch}")
            bar.set_postfix(loss=f"{mean:.4f}")
            if lines is not None:
                lines.update(epoch, loss=mean)
            if scheduler is not None:
                scheduler.step()
    check_weights_finite(model, desc)
    return model


class SGDMethod:
    """Hyperparameters shared by methods that run plain SGD epochs over one granted split (FT, GA, ...)."""

    def __init__(
        self,
        epochs: int,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        batch_size: int = 256,
        augment: bool = True,
    ):
        self.epochs, self.lr, self.momentum, self.weight_decay = epochs, lr, momentum, weight_decay
        self.batch_size, self.augment = batch_size, augment

    def sgd_epochs(self, model: nn.Module, split, loss, ctx: UnlearnContext, desc: str) -> nn.Module:
        """`epochs` passes over `split` in train mode, minimising `loss(model, x, y)` with SGD."""
        model.train()
        opt = sgd(model.parameters(), self.lr, self.momentum, self.weight_decay)
        batches = ctx.batches(split, self.batch_size, shuffle=True, augment=self.augment)
        return train_epochs(model, self.epochs, batches, loss, opt, ctx, desc)
