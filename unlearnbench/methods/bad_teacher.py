"""`bad_teacher`: distil from a competent teacher on D_r and an incompetent one on D_f.

Chundawat, Tarun, Mandal, Kankanhalli, "Can Bad Teaching Induce Forgetting? Unlearning in Deep
Networks Using an Incompetent Teacher", AAAI 2023 (arXiv 2205.08096). The competent teacher is a
frozen copy of the original model; the incompetent one is the same architecture re-initialised at
random (seeded). The student (the model) is trained on D_f plus a random 30% of D_r, shuffled
together, to match the incompetent teacher on forget samples and the competent one on retain
samples: KL at temperature T (default 1), 1 epoch, Adam lr 1e-4, batch 256, student in train mode.
The authors' `F.kl_div` uses reduction "mean" (over batch and classes) without a T^2 factor; ours is
the batch-mean KL times T^2, a constant factor that Adam's update is insensitive to.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from unlearnbench.config.checks import check_number
from unlearnbench.data.splits import Split
from unlearnbench.methods.base import Method
from unlearnbench.methods.lib.common import train_epochs
from unlearnbench.methods.lib.importance import distill_kl, frozen_copy, reinitialised_copy


def retain_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Sorted positions of a seeded random `int(fraction * n)` of `n` retain samples."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[: int(fraction * n)].sort().values


def unlearning_set(forget: Split, retain: Split, fraction: float, seed: int) -> Split:
    """D_f plus a random `fraction` of D_r; its labels are the forget flags (1 forget, 0 retain).

    The true labels are not needed: the targets come from the teachers.
    """
    keep = retain_subset(len(retain), fraction, seed).to(retain.x.device)
    x = torch.cat([forget.x, retain.x[keep]])
    flags = torch.cat([torch.ones(len(forget), dtype=torch.long), torch.zeros(len(keep), dtype=torch.long)])
    indices = torch.cat([forget.indices, retain.indices[keep.cpu()]])
    return Split("bad_teacher", x, flags.to(forget.y.device), indices)


def bad_teacher_loss(
    student: nn.Module,
    x: torch.Tensor,
    is_forget: torch.Tensor,
    good: nn.Module,
    bad: nn.Module,
    temperature: float,
) -> torch.Tensor:
    """KL to the incompetent teacher's outputs on forget samples and to the competent one's on the rest."""
    with torch.no_grad():
        target = torch.where(is_forget.bool()[:, None], bad(x), good(x))
    return distill_kl(student(x), target, temperature)


class BadTeacher(Method):
    needs = frozenset({"forget", "retain"})

    def __init__(
        self,
        epochs: int = 1,
        lr: float = 1e-4,
        retain_fraction: float = 0.3,
        temperature: float = 1.0,
        batch_size: int = 256,
        augment: bool = False,
    ):
        check_number("method.retain_fraction", retain_fraction, 0, 1, low_open=True)
        check_number("method.temperature", temperature, 0, low_open=True)
        self.epochs, self.lr = epochs, lr
        self.retain_fraction, self.temperature = retain_fraction, temperature
        self.batch_size, self.augment = batch_size, augment

    def unlearn(self, model, data, ctx):
        good = frozen_copy(model)
        bad = reinitialised_copy(model, seed=ctx.seed_for("incompetent_teacher"))
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        split = unlearning_set(data.forget, data.retain, self.retain_fraction, ctx.seed_for("retain_subset"))
        batches = ctx.batches(split, self.batch_size, shuffle=True, augment=self.augment)
        loss = partial(bad_teacher_loss, good=good, bad=bad, temperature=self.temperature)
        return train_epochs(model, self.epochs, batches, loss, opt, ctx, "bad_teacher")
