"""`ga`: gradient ascent on the forget set (minimise -CE on D_f).

Thudi et al., "Unrolling SGD", EuroS&P 2022; Graves et al., "Amnesiac Machine Learning", AAAI 2021;
the GA / NegGrad baseline of SalUn (Fan et al., ICLR 2024). Defaults follow SalUn's class-wise
setting (lr 1e-4); random forgetting usually needs a larger lr.
"""

from __future__ import annotations

import torch.nn.functional as F

from unlearnbench.methods.base import Method
from unlearnbench.methods.common import SGDMethod


class GradientAscent(SGDMethod, Method):
    needs = frozenset({"forget"})

    def __init__(
        self,
        epochs: int = 5,
        lr: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        batch_size: int = 256,
        augment: bool = True,
    ):
        super().__init__(epochs, lr, momentum, weight_decay, batch_size, augment)

    def unlearn(self, model, data, ctx):
        return self.sgd_epochs(model, data.forget, lambda m, x, y: -F.cross_entropy(m(x), y), ctx, "ga")
