"""`ft`: fine-tune on the retain set (catastrophic forgetting of D_f).

Warnecke et al., "Machine Unlearning of Features and Labels", NDSS 2023; the FT baseline of
SalUn (Fan et al., ICLR 2024) and l1-sparse (Jia et al., NeurIPS 2023): SGD lr 0.01, 10 epochs.
"""

from __future__ import annotations

import torch.nn.functional as F

from unlearnbench.methods.base import Method
from unlearnbench.methods.common import SGDMethod


class FineTune(SGDMethod, Method):
    needs = frozenset({"retain"})

    def __init__(
        self,
        epochs: int = 10,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        batch_size: int = 256,
        augment: bool = True,
    ):
        super().__init__(epochs, lr, momentum, weight_decay, batch_size, augment)

    def unlearn(self, model, data, ctx):
        return self.sgd_epochs(model, data.retain, lambda m, x, y: F.cross_entropy(m(x), y), ctx, "ft")
