"""Building blocks shared by the random-label baselines (RL and SalUn).

- `random_wrong_labels`: seeded random labels, each different from the true one.
- `random_label_epochs`: the RL epoch (Golatkar et al., CVPR 2020; Graves et al., "Amnesiac Machine
  Learning", AAAI 2021): a pass over D_f with fresh random wrong labels, then a pass over D_r with
  the true labels.
- `saliency_mask` / `masked_gradients`: SalUn's weight saliency (Fan et al., "SalUn: Empowering
  Machine Unlearning via Gradient-based Weight Saliency", ICLR 2024, arXiv 2310.12508) and a
  `train_epochs(after_backward=...)` hook that confines every update to the salient weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from unlearnbench.errors import UserError
from unlearnbench.methods.base import UnlearnContext
from unlearnbench.methods.lib.common import train_epochs

Mask = dict[str, torch.Tensor]  # parameter name -> bool tensor of its shape (True = may change)
Grads = dict[str, torch.Tensor]  # parameter name -> gradient


def random_wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A label drawn uniformly from the other `num_classes - 1` classes, for each entry of `y`.

    Adding an offset in 1..C-1 modulo C never returns the true class. The offsets are drawn on the
    generator's device (the compute device: no host-to-device copy per step).
    """
    if num_classes < 2:
        raise UserError(f"random labels need at least 2 classes, got num_classes={num_classes}")
    offset = torch.randint(1, num_classes, tuple(y.shape), generator=generator, device=generator.device)
    return (y + offset.to(y.device)) % num_classes


def random_label_epochs(
    model: nn.Module,
    epochs: int,
    forget: Iterable,
    retain: Iterable,
    optimizer: torch.optim.Optimizer,
    ctx: UnlearnContext,
    labels: torch.Generator,
    desc: str,
    after_backward: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """Each epoch: one pass over `forget` with random wrong labels, then one pass over `retain`."""

    def forget_loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(m(x), random_wrong_labels(y, ctx.num_classes, labels))

    def retain_loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(m(x), y)

    for epoch in range(1, epochs + 1):
        train_epochs(
            model,
            1,
            forget,
            forget_loss,
            optimizer,
            ctx,
            f"{desc} forget {epoch}/{epochs}",
            after_backward=after_backward,
        )
        train_epochs(
            model,
            1,
            retain,
            retain_loss,
            optimizer,
            ctx,
            f"{desc} retain {epoch}/{epochs}",
            after_backward=after_backward,
        )
    return model


def forget_ascent_gradients(model: nn.Module, batches: Iterable, ctx: UnlearnContext) -> Grads:
    """Gradient of the GA loss (-CE, batch mean) summed over the batches, per trainable parameter.

    The model is evaluated in eval mode (as in SalUn's mask script) and its mode is restored.
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    total = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    was_training = model.training
    model.eval()
    for x, y in tqdm(batches, desc="salun mask", disable=not ctx.runtime.progress, leave=False):
        with ctx.runtime.autocast():
            loss = -F.cross_entropy(model(x).float(), y)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for name, g in zip(params, grads):
            if g is not None:
                total[name] += g.float()
    model.train(was_training)
    return total


def top_fraction_mask(scores: Grads, fraction: float) -> Mask:
    """True for the `round(fraction * N)` largest |scores| over all tensors jointly (one global cut)."""
    names = list(scores)
    flat = torch.cat([scores[n].abs().flatten() for n in names])
    keep = int(round(fraction * flat.numel()))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    chosen[torch.topk(flat, keep, sorted=False).indices] = True
    pieces = chosen.split([scores[n].numel() for n in names])
    return {n: piece.view_as(scores[n]) for n, piece in zip(names, pieces)}


def saliency_mask(model: nn.Module, batches: Iterable, fraction: float, ctx: UnlearnContext) -> Mask:
    """SalUn's hard mask: the top `fraction` of |grad of the GA loss on D_f| over all parameters."""
    return top_fraction_mask(forget_ascent_gradients(model, batches, ctx), fraction)


def masked_gradients(mask: Mask, weight_decay: float = 0.0) -> Callable[[nn.Module], None]:
    """An `after_backward` hook: add L2 weight decay, then zero every gradient outside `mask`.

    Pair it with an optimiser built with `weight_decay=0`: SGD's own decay would still move the
    unmasked weights. Folding the decay in here (grad += wd * theta, as SGD does) and masking after
    it keeps the momentum buffers of unmasked weights at +0, so those weights stay bit-identical.
    """

    def hook(model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if p.grad is None:
                continue
            if weight_decay:
                p.grad.add_(p.detach(), alpha=weight_decay)
            p.grad.masked_fill_(~mask[name], 0.0)

    return hook
