"""`l1_sparse`: sparsity-aware unlearning, fine-tuning on D_r with a decaying L1 penalty.

Jia, Liu, Ram, Yao, Liu, Liu, Sharma, Liu, "Model Sparsity Can Simplify Machine Unlearning",
NeurIPS 2023 (arXiv 2304.04934). Loss per retain batch: CE + gamma_t * ||theta||_1, the L1 an
unnormalised sum over all trainable parameters. gamma decays linearly per epoch as in the authors'
code: gamma_t = gamma * (1 - t / (E - no_l1_epochs)) for epochs t = 0 .. E - no_l1_epochs - 1 (so
it would reach 0 at t = E - no_l1_epochs), and 0 for the last `no_l1_epochs` epochs.
Defaults: 10 epochs, SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, augmented data,
gamma 5e-4. The authors' README leaves gamma as `--alpha ${alpha}`; 5e-4 is the project default,
not a value found in their public scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.checks import check_int, check_number
from unlearnbench.methods.ft import FineTune
from unlearnbench.methods.lib.common import l1_norm, train_epochs


def gamma_schedule(gamma: float, epochs: int, no_l1_epochs: int = 0) -> list[float]:
    """gamma_t for t = 0 .. epochs - 1: linear from gamma towards 0, then 0 for the last no_l1_epochs."""
    decay = epochs - no_l1_epochs
    return [gamma * (1.0 - t / decay) if t < decay else 0.0 for t in range(epochs)]


def l1_sparse_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """CE on a retain batch plus gamma * ||theta||_1."""
    loss = F.cross_entropy(model(x), y)
    return loss + gamma * l1_norm(model) if gamma else loss


@dataclass(eq=False)
class L1Sparse(FineTune):
    """FT on D_r (same knobs as `ft`) plus the decaying L1 penalty."""

    gamma: float = 5e-4
    no_l1_epochs: int = 0

    def __post_init__(self):
        check_int("method.no_l1_epochs", self.no_l1_epochs, 0, self.epochs, hint="at most method.epochs")
        self.gamma = float(check_number("method.gamma", self.gamma, 0, hint="e.g. 5e-4"))

    def unlearn(self, model, data, ctx):
        model.train()
        opt = self.sgd(model.parameters())
        batches = ctx.batches(data.retain, self.batch_size, shuffle=True, augment=self.augment)
        for epoch, gamma in enumerate(gamma_schedule(self.gamma, self.epochs, self.no_l1_epochs), start=1):
            train_epochs(
                model,
                1,
                batches,
                partial(l1_sparse_loss, gamma=gamma),
                opt,
                ctx,
                f"l1_sparse {epoch}/{self.epochs} gamma={gamma:.2e}",
            )
            l1 = float(l1_norm(model).detach())
            ctx.log({"l1_sparse/gamma": gamma, "l1_sparse/l1": l1, "l1_sparse/epoch": epoch})
        return model
