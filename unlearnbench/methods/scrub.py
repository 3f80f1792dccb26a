"""`scrub`: SCRUB, teacher-student unlearning with alternating max and min steps.

Kurmanji, Triantafillou, Hayes, Triantafillou, "Towards Unbounded Machine Unlearning", NeurIPS 2023
(arXiv 2302.09880). The teacher is a frozen copy of the original model; the student (the model)
starts as the original.

Schedule (epochs numbered 1..E): epoch e runs a max phase, one pass over D_f that maximises the
distillation KL to the teacher at temperature T, only while e <= msteps; then every epoch runs a
min phase, one pass over D_r minimising gamma * CE + alpha * KL. Defaults (authors' large-scale
runs, SCRUB repository, large_scale_unlearning.ipynb): E = 3, msteps = 2, T = 4, gamma 0.99,
alpha 0.001, forget batches of 512 and retain batches of 256, no augmentation, one SGD optimiser
(lr 5e-4, momentum 0.9, weight decay 5e-4) shared by both phases, constant lr (their step decay
starts after epoch 3), the student in train mode and the teacher in eval mode. Their optional SWA
averaging starts at epoch 10, so it never acts in 3 epochs, and is left out.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.checks import check_int, check_number
from unlearnbench.methods.base import Method
from unlearnbench.methods.lib.common import sgd, train_epochs
from unlearnbench.methods.lib.importance import distill_kl, frozen_copy


def max_phase_schedule(epochs: int, msteps: int) -> list[bool]:
    """For each epoch, whether it starts with a max phase on D_f: only the first `msteps` do."""
    return [epoch < msteps for epoch in range(epochs)]


def max_step_loss(
    student: nn.Module, x: torch.Tensor, y: torch.Tensor, teacher: nn.Module, temperature: float
) -> torch.Tensor:
    """Negative distillation KL on a forget batch: descending it pushes the student away."""
    with torch.no_grad():
        target = teacher(x)
    return -distill_kl(student(x), target, temperature)


def min_step_loss(
    student: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    teacher: nn.Module,
    temperature: float,
    gamma: float,
    alpha: float,
) -> torch.Tensor:
    """gamma * CE + alpha * KL on a retain batch: keep the student's retain behaviour."""
    with torch.no_grad():
        target = teacher(x)
    logits = student(x)
    return gamma * F.cross_entropy(logits, y) + alpha * distill_kl(logits, target, temperature)


class SCRUB(Method):
    needs = frozenset({"forget", "retain"})

    def __init__(
        self,
        epochs: int = 3,
        msteps: int = 2,
        lr: float = 5e-4,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        gamma: float = 0.99,
        alpha: float = 0.001,
        temperature: float = 4.0,
        forget_batch_size: int = 512,
        retain_batch_size: int = 256,
        augment: bool = False,
    ):
        check_int("method.msteps", msteps, 0, hint="epochs with a max phase")
        check_number("method.temperature", temperature, 0, low_open=True)
        self.epochs, self.msteps, self.lr = epochs, msteps, lr
        self.momentum, self.weight_decay = momentum, weight_decay
        self.gamma, self.alpha, self.temperature = gamma, alpha, temperature
        self.forget_batch_size, self.retain_batch_size = forget_batch_size, retain_batch_size
        self.augment = augment

    def unlearn(self, model, data, ctx):
        teacher = frozen_copy(model)
        model.train()
        opt = sgd(model.parameters(), self.lr, self.momentum, self.weight_decay)
        forget = ctx.batches(
            data.forget, self.forget_batch_size, shuffle=True, augment=self.augment, stream="forget"
        )
        retain = ctx.batches(
            data.retain, self.retain_batch_size, shuffle=True, augment=self.augment, stream="retain"
        )
        maximise = partial(max_step_loss, teacher=teacher, temperature=self.temperature)
        minimise = partial(
            min_step_loss, teacher=teacher, temperature=self.temperature, gamma=self.gamma, alpha=self.alpha
        )
        for epoch, with_max in enumerate(max_phase_schedule(self.epochs, self.msteps), start=1):
            if with_max:
                train_epochs(model, 1, forget, maximise, opt, ctx, f"scrub max {epoch}/{self.epochs}")
            train_epochs(model, 1, retain, minimise, opt, ctx, f"scrub min {epoch}/{self.epochs}")
        return model
