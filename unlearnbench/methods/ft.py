"""`ft`: fine-tune on the retain set (catastrophic forgetting of D_f).

Warnecke et al., "Machine Unlearning of Features and Labels", NDSS 2023; the FT baseline of
SalUn (Fan et al., ICLR 2024) and l1-sparse (Jia et al., NeurIPS 2023): SGD lr 0.01, 10 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from unlearnbench.methods.lib.common import SGDMethod


@dataclass(eq=False)
class FineTune(SGDMethod):
    needs = frozenset({"retain"})

    def unlearn(self, model, data, ctx):
        return self.sgd_epochs(model, data.retain, lambda m, x, y: F.cross_entropy(m(x), y), ctx, "ft")
