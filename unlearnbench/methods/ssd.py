"""`ssd`: Selective Synaptic Dampening, one-shot and training-free.

Foster, Schoepf, Brintrup, "Fast Machine Unlearning Without Retraining Through Selective Synaptic
Dampening", AAAI 2024 (arXiv 2308.07707). Importances are mean squared CE gradients over batches
(a diagonal Fisher estimate), on D_f and on D = D_r + D_f (all training data), with the model in
eval mode as in the authors' code. A parameter is selected where imp_f > alpha * imp_D and then
multiplied by min(lambda * imp_D / imp_f, 1); all others stay bit-identical.
ResNet-18 defaults: lambda (dampening_constant) 1, alpha (selection_weighting) 10.

Batches: the gradient noise in a squared batch-mean gradient scales as 1/batch size, so imp_f and
imp_D are only comparable when both come from batches of one size. The authors' loaders keep a
ragged last batch, which on a small D_f (say 130 samples: batches of 128 and 2) inflates imp_f many
times and dampens most of the network. Here both use batches of min(batch_size, |D_f|) and, by
default, drop the ragged last batch (`drop_last: false` restores the authors' behaviour).
"""

from __future__ import annotations

import torch
from torch import nn

from unlearnbench.config.checks import check_number
from unlearnbench.data.splits import Split
from unlearnbench.methods.base import Method
from unlearnbench.methods.lib.importance import Importances, mean_squared_gradients


def dampening_factors(
    imp_forget: torch.Tensor, imp_full: torch.Tensor, alpha: float, lam: float
) -> torch.Tensor:
    """min(lam * imp_D / imp_f, 1) where imp_f > alpha * imp_D, else exactly 1."""
    selected = imp_forget > alpha * imp_full
    # Unselected entries may have imp_f = 0: divide by 1 there, their factor is replaced anyway.
    ratio = lam * imp_full / torch.where(selected, imp_forget, torch.ones_like(imp_forget))
    return torch.where(selected, ratio.clamp(max=1.0), torch.ones_like(ratio))


@torch.no_grad()
def dampen_(
    model: nn.Module, imp_forget: Importances, imp_full: Importances, alpha: float, lam: float
) -> float:
    """Scale the selected parameters in place; return the fraction of parameter entries selected."""
    selected = total = 0
    for name, p in model.named_parameters():
        if name not in imp_forget:
            continue
        mask = imp_forget[name] > alpha * imp_full[name]
        factors = dampening_factors(imp_forget[name], imp_full[name], alpha, lam).to(p.dtype)
        p.copy_(torch.where(mask, p * factors, p))  # unselected entries are copied unchanged
        selected += int(mask.sum())
        total += mask.numel()
    return selected / max(total, 1)


def full_training_set(forget: Split, retain: Split) -> Split:
    """D = D_r followed by D_f (the training set the original model saw)."""
    return Split(
        "train",
        torch.cat([retain.x, forget.x]),
        torch.cat([retain.y, forget.y]),
        torch.cat([retain.indices, forget.indices]),
    )


class SelectiveSynapticDampening(Method):
    needs = frozenset({"forget", "retain"})

    def __init__(
        self,
        dampening_constant: float = 1.0,
        selection_weighting: float = 10.0,
        batch_size: int = 128,
        drop_last: bool = True,
        augment: bool = False,
    ):
        check_number("method.selection_weighting", selection_weighting, 0, low_open=True, hint="alpha")
        self.lam, self.alpha = dampening_constant, selection_weighting
        self.batch_size, self.drop_last, self.augment = batch_size, drop_last, augment

    def importances(self, model: nn.Module, split: Split, batch_size: int, ctx, desc: str) -> Importances:
        # Shuffled (seeded, one stream per split): the dropped tail is random, not always the last samples.
        batches = ctx.batches(split, batch_size, shuffle=True, augment=self.augment, drop_last=self.drop_last)
        return mean_squared_gradients(
            model, batches, autocast=ctx.runtime.autocast, progress=ctx.runtime.progress, desc=desc
        )

    def unlearn(self, model, data, ctx):
        model.eval()
        batch_size = min(self.batch_size, len(data.forget))  # equal batch sizes for D_f and D (see above)
        imp_forget = self.importances(model, data.forget, batch_size, ctx, "ssd importance D_f")
        full = full_training_set(data.forget, data.retain)
        imp_full = self.importances(model, full, batch_size, ctx, "ssd importance D")
        fraction = dampen_(model, imp_forget, imp_full, self.alpha, self.lam)
        ctx.log({"ssd/selected_fraction": fraction, "ssd/batch_size": batch_size})
        return model
