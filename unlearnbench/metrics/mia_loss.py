"""Loss-based membership inference of the NeurIPS 2023 unlearning starting kit (used by ∇τ,
Trippa et al. arXiv 2403.14339), and the shared base of its entropy-based twin (`mia_entropy`).

Per-sample feature of D_f (label 1) and D_test (label 0); the larger set is shuffled (seeded) and
cut to the smaller one's size; `LogisticRegression()` with defaults is scored by accuracy under
`StratifiedShuffleSplit(n_splits=10, random_state=0)` (test size 0.1); the mean accuracy is
reported (`attacks.logistic_mia`). Computed for every evaluated model (original, unlearned,
Retrain). 0.5 = the forget set is indistinguishable from unseen data: the ideal.
"""

from __future__ import annotations

from typing import ClassVar

from unlearnbench.checks import check_int
from unlearnbench.metrics.attacks import logistic_mia
from unlearnbench.metrics.base import Column, Metric
from unlearnbench.metrics.features import FeatureFn, ce_loss


class LogisticMIA(Metric):
    """Logistic-regression attack on one per-sample feature, forget vs test (see module docstring).

    Subclasses set `key` (the result name) and `feature` (a `features` function).
    """

    key: ClassVar[str]
    order: ClassVar[int]
    label: ClassVar[str]
    feature: ClassVar[FeatureFn]
    feature_doc: ClassVar[str]

    def __init__(self, n_splits: int = 10, seed: int = 0):
        self.n_splits = check_int(f"eval.metrics.{self.key}.n_splits", n_splits, 1)
        self.seed = int(seed)

    def per_model(self, outputs) -> dict[str, float]:
        forget, test = outputs["forget"], outputs["test"]
        feature = type(self).feature
        value = logistic_mia(
            feature(forget.logits, forget.labels),
            feature(test.logits, test.labels),
            n_splits=self.n_splits,
            seed=self.seed,
        )
        return {self.key: value}

    def columns(self) -> list[Column]:
        return [
            Column(
                self.key,
                order=self.order,
                label=self.label,
                ideal=0.5,
                direction="closer to 0.5",
                extra={
                    "feature": self.feature_doc,
                    "definition": "mean CV accuracy of LogisticRegression on the feature, D_f (1) vs D_test (0), "
                    "balanced by subsampling the larger set (NeurIPS 2023 starting kit)",
                },
            )
        ]


class MIALoss(LogisticMIA):
    """`mia_loss`: the attack on per-sample cross-entropy loss -log p_y."""

    key = "mia_loss"
    order = 70
    label = "MIA-loss"
    feature = staticmethod(ce_loss)
    feature_doc = "cross-entropy loss -log p_y"
