"""`ga`: gradient ascent on the forget set (minimise -CE on D_f).

Thudi et al., "Unrolling SGD", EuroS&P 2022; Graves et al., "Amnesiac Machine Learning", AAAI 2021;
the GA / NegGrad baseline of SalUn (Fan et al., ICLR 2024). Defaults follow SalUn's class-wise
setting (lr 1e-4); random forgetting usually needs a larger lr.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from unlearnbench.methods.lib.common import SGDMethod


@dataclass(eq=False)
class GradientAscent(SGDMethod):
    needs = frozenset({"forget"})

    epochs: int = 5  # SalUn's class-wise setting
    lr: float = 1e-4

    def unlearn(self, model, data, ctx):
        return self.sgd_epochs(model, data.forget, lambda m, x, y: -F.cross_entropy(m(x), y), ctx, "ga")
