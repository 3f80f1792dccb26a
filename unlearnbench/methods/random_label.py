"""`random_label`: RL, relearning the forget set under random wrong labels.

Golatkar, Achille, Soatto, "Eternal Sunshine of the Spotless Net: Selective Forgetting in Deep
Networks", CVPR 2020 (arXiv 1911.04933); Graves, Nagisetty, Ganesh, "Amnesiac Machine Learning",
AAAI 2021 (arXiv 2010.10981). Each epoch makes one pass over D_f with labels drawn uniformly from
the wrong classes (fresh each epoch, seeded), then one pass over D_r with the true labels.
Defaults follow the RL baseline of SalUn's code (Fan et al., ICLR 2024): 10 epochs, SGD lr 0.01,
momentum 0.9, weight decay 5e-4, batch 256, augmented data, model in train mode. (SalUn's code may
draw the true label by chance; here the random label always differs from it.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim import Optimizer

from unlearnbench.methods.base import GrantedSplits, UnlearnContext
from unlearnbench.methods.lib.common import SGDMethod
from unlearnbench.methods.lib.relabel import random_label_epochs

Hook = Callable[[nn.Module], None]


@dataclass(eq=False)
class RandomLabel(SGDMethod):
    needs = frozenset({"forget", "retain"})
    tag = "rl"  # progress-bar label

    def optimiser(
        self, model: nn.Module, data: GrantedSplits, ctx: UnlearnContext
    ) -> tuple[Optimizer, Hook | None]:
        """The optimiser and an optional `after_backward` hook (SalUn overrides this to mask updates)."""
        return self.sgd(model.parameters()), None

    def unlearn(self, model, data, ctx):
        opt, hook = self.optimiser(model, data, ctx)
        model.train()
        forget = ctx.batches(data.forget, self.batch_size, augment=self.augment, stream="forget")
        retain = ctx.batches(data.retain, self.batch_size, augment=self.augment, stream="retain")
        labels = torch.Generator(ctx.device).manual_seed(ctx.seed_for("labels"))  # drawn where they are used
        return random_label_epochs(model, self.epochs, forget, retain, opt, ctx, labels, self.tag, hook)
