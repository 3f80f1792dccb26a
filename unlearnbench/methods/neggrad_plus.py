"""`neggrad_plus`: NegGrad+, descent on D_r and ascent on D_f in one weighted loss.

Kurmanji, Triantafillou, Hayes, Triantafillou, "Towards Unbounded Machine Unlearning", NeurIPS 2023
(arXiv 2302.09880). Each step pairs one forget batch with one retain batch and descends

    L = beta * CE(retain batch) - (1 - beta) * CE(forget batch)

with two separate forward passes (BN batch statistics are not mixed). By default an epoch is one
pass over D_r, each retain batch paired with the next batch of a forget stream, the loop of the
authors' code (SCRUB repository). Here the forget stream carries over between epochs and restarts,
reshuffled, when exhausted; theirs (itertools.cycle) replays the epoch's first forget pass and starts
afresh each epoch. `pass_over: forget` instead makes an epoch one pass over D_f with the retain
stream carrying over.

Defaults are the authors' large-scale ones (SCRUB repository, resnet50_cifar100.ipynb): beta 0.9999,
plain SGD lr 0.01 without momentum or weight decay, 5 epochs, retain batches of 128, forget batches
of 64, no augmentation (their loaders are built with augment=False), model in train mode. Their
small-scale notebook uses beta 0.95 with an extra L2 pull towards the original weights, which is left
out here.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.checks import check_choice, check_number
from unlearnbench.methods.base import Method
from unlearnbench.methods.lib.common import endless, sgd, train_epochs

PASS_OVER = ("forget", "retain")


class PairedBatches:
    """Batches `((x_f, x_r), (y_f, y_r))`: each batch of the driving split with the partner's next one.

    The partner stream is created once, so it carries over from one epoch to the next.
    """

    def __init__(self, forget: Iterable, retain: Iterable, pass_over: str = "retain"):
        self.forget_drives = pass_over == "forget"
        self.driver, partner, partner_name = (
            (forget, retain, "retain") if self.forget_drives else (retain, forget, "forget")
        )
        self.partner = endless(partner, f"neggrad_plus: the {partner_name} set")

    def __len__(self) -> int:
        return len(self.driver)

    def __iter__(self):
        for driven in self.driver:
            partner = next(self.partner)
            f, r = (driven, partner) if self.forget_drives else (partner, driven)
            yield (f[0], r[0]), (f[1], r[1])


Pair = tuple[torch.Tensor, torch.Tensor]


def neggrad_plus_loss(model: nn.Module, x: Pair, y: Pair, beta: float) -> torch.Tensor:
    """beta * CE(retain) - (1 - beta) * CE(forget) for x = (x_forget, x_retain), y likewise."""
    (x_f, x_r), (y_f, y_r) = x, y
    return beta * F.cross_entropy(model(x_r), y_r) - (1.0 - beta) * F.cross_entropy(model(x_f), y_f)


class NegGradPlus(Method):
    needs = frozenset({"forget", "retain"})

    def __init__(
        self,
        epochs: int = 5,
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        beta: float = 0.9999,
        forget_batch_size: int = 64,
        retain_batch_size: int = 128,
        pass_over: str = "retain",
        augment: bool = False,
    ):
        check_number("method.beta", beta, 0, 1)
        check_choice("method.pass_over", pass_over, PASS_OVER)
        self.epochs, self.lr, self.momentum, self.weight_decay = epochs, lr, momentum, weight_decay
        self.beta, self.pass_over, self.augment = float(beta), pass_over, augment
        self.forget_batch_size, self.retain_batch_size = forget_batch_size, retain_batch_size

    def unlearn(self, model, data, ctx):
        model.train()
        opt = sgd(model.parameters(), self.lr, self.momentum, self.weight_decay)
        batches = partial(ctx.batches, shuffle=True, augment=self.augment)
        forget = batches(data.forget, self.forget_batch_size, stream="forget")
        retain = batches(data.retain, self.retain_batch_size, stream="retain")
        pairs = PairedBatches(forget, retain, self.pass_over)
        return train_epochs(
            model, self.epochs, pairs, partial(neggrad_plus_loss, beta=self.beta), opt, ctx, "neggrad_plus"
        )
