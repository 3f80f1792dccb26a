"""Entropy-based membership inference of the NeurIPS 2023 unlearning starting kit (used by ∇τ,
Trippa et al. arXiv 2403.14339): the `mia_loss` attack on prediction entropy -sum_k p_k log p_k
instead of the loss (it needs no label). Ideal 0.5. See `mia_loss.LogisticMIA`.
"""

from __future__ import annotations

from unlearnbench.metrics.lib.features import entropy
from unlearnbench.metrics.mia_loss import LogisticMIA


class MIAEntropy(LogisticMIA):
    """`mia_entropy`: the logistic-regression attack on per-sample prediction entropy."""

    key = "mia_entropy"
    order = 80
    label = "MIA-ent"
    feature = staticmethod(entropy)
    feature_doc = "prediction entropy -sum_k p_k log p_k (nats)"
