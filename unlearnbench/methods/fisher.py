"""`fisher`: Fisher forgetting, Gaussian noise shaped by the inverse Fisher on D_r.

Golatkar, Achille, Soatto, "Eternal Sunshine of the Spotless Net: Selective Forgetting in Deep
Networks", CVPR 2020 (arXiv 1911.04933). Parameters that matter for D_r (large Fisher) get little
noise; the rest, which may encode D_f, get much: theta <- theta + sqrt(var) * N(0, 1) per entry, with

    var = alpha * min(1 / (F + eps), max_inverse_fisher)

F the diagonal Fisher on D_r. As in the authors' code the clamp acts on 1/F before alpha scales it,
so every variance, clamped or not, is proportional to alpha. Simplified variant, stated: F is the
per-sample EMPIRICAL Fisher (squared CE gradient at the true label, averaged over D_r; model in eval
mode, un-augmented), not the authors' per-class expectation over the model's predictive
distribution; one rule for every parameter tensor (the authors' code also averages the variance over
each weight's rows, scales the head's and BN's variance by 10, clamps the head's 1/F at 1e2, and for
class forgetting zeroes the forgotten classes' head rows: none of that here). Defaults as in the
authors' code: alpha 1e-6, eps 1e-8, max_inverse_fisher 1e3. The noise is drawn on the CPU from a
generator seeded from the run's seed (its stream "noise"), so it is the same on any device.
"""

from __future__ import annotations

import torch
from torch import nn

from unlearnbench.config.checks import check_number
from unlearnbench.methods.base import Method
from unlearnbench.methods.lib.common import check_weights_finite
from unlearnbench.methods.lib.importance import Importances, mean_squared_gradients


def clamped_inverse(fisher: Importances, max_inverse_fisher: float, eps: float = 1e-8) -> Importances:
    """Per-entry min(1 / (F + eps), max_inverse_fisher)."""
    return {name: (1.0 / (f + eps)).clamp(max=max_inverse_fisher) for name, f in fisher.items()}


@torch.no_grad()
def add_gaussian_noise_(model: nn.Module, variances: Importances, seed: int) -> None:
    """theta += sqrt(var) * z, z ~ N(0, 1) from a CPU generator seeded with `seed` (parameter order)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name in variances:
            z = torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.device)
            p.add_((variances[name].sqrt() * z).to(p.dtype))


class FisherForgetting(Method):
    needs = frozenset({"retain"})

    def __init__(
        self,
        alpha: float = 1e-6,
        max_inverse_fisher: float = 1e3,
        eps: float = 1e-8,
        batch_size: int = 256,
        chunk_size: int = 64,
        augment: bool = False,
    ):
        for key, value in (("alpha", alpha), ("max_inverse_fisher", max_inverse_fisher), ("eps", eps)):
            check_number(f"method.{key}", value, 0, low_open=True)
        self.alpha, self.max_inverse_fisher, self.eps = alpha, max_inverse_fisher, eps
        self.batch_size, self.chunk_size, self.augment = batch_size, chunk_size, augment

    def unlearn(self, model, data, ctx):
        model.eval()
        batches = ctx.batches(data.retain, self.batch_size, shuffle=False, augment=self.augment)
        fisher = mean_squared_gradients(
            model,
            batches,
            per_sample=True,
            chunk_size=self.chunk_size,
            autocast=ctx.runtime.autocast,
            progress=ctx.runtime.progress,
            desc="fisher on D_r",
        )
        inverse = clamped_inverse(fisher, self.max_inverse_fisher, self.eps)
        clamped = sum(int((v >= self.max_inverse_fisher).sum()) for v in inverse.values())
        ctx.log({"fisher/clamped_fraction": clamped / sum(v.numel() for v in inverse.values())})
        variances = {name: self.alpha * v for name, v in inverse.items()}
        add_gaussian_noise_(model, variances, seed=ctx.seed_for("noise"))
        check_weights_finite(model, "fisher noise")
        return model
