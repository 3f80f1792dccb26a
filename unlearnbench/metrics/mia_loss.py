"""Loss-based membership inference of the NeurIPS 2023 unlearning starting kit (used by ∇τ,
Trippa et al. arXiv 2403.14339), and the shared base of its entropy-based twin (`mia_entropy`).

Per-sample feature of D_f (label 1) and of unseen samples (label 0); the larger set is shuffled (seeded)
and cut to the smaller one's size; `LogisticRegression()` with defaults is scored by accuracy under
`StratifiedShuffleSplit(n_splits=10, random_state=0)` (test size 0.1); the mean accuracy is
reported (`attacks.logistic_mia`). Computed for every evaluated model (original, unlearned,
Retrain). 0.5 = the forget set is indistinguishable from unseen data: the ideal.

The unseen samples are D_test for random forgetting (the kit's), and the forgotten classes' test images
(`test_forget`) in class-wise scenarios: the remaining classes' test images differ from a forgotten class
by their class alone, so against them even Retrain scores near 100 %, not 50 %.

`draws` (default 10) repeats the subsample with seeds seed..seed+draws-1 and reports the mean, and the
spread of one draw as `<key>_std`: one draw's score moves by a few points with the subsample (std about
2.5 points on the memorising CIFAR-10 setting), as much as the differences it is used to compare; ten
draws bring the mean's share of that noise to about a third, for ten times the fits (under a second).
`draws=1` is the kit's single-draw procedure exactly.
"""

from __future__ import annotations

from typing import ClassVar

from unlearnbench.config.checks import check_int
from unlearnbench.metrics.base import Column, Metric
from unlearnbench.metrics.lib.attacks import logistic_mia_draws
from unlearnbench.metrics.lib.features import FeatureFn, ce_loss


class LogisticMIA(Metric):
    """Logistic-regression attack on one per-sample feature, forget vs test (see module docstring).

    Subclasses set `key` (the result name) and `feature` (a `features` function).
    """

    key: ClassVar[str]
    order: ClassVar[int]
    label: ClassVar[str]
    feature: ClassVar[FeatureFn]
    feature_doc: ClassVar[str]

    def __init__(self, n_splits: int = 10, seed: int = 0, draws: int = 10):
        self.n_splits = check_int(f"eval.metrics.{self.key}.n_splits", n_splits, 1)
        self.seed = check_int(f"eval.metrics.{self.key}.seed", seed, 0)
        self.draws = check_int(f"eval.metrics.{self.key}.draws", draws, 1)

    def per_model(self, outputs) -> dict[str, float]:
        forget = outputs["forget"]
        # class-wise: the forgotten classes' test images (module docstring)
        unseen = outputs["test_forget"] if "test_forget" in outputs else outputs["test"]
        feature = type(self).feature
        mean, std = logistic_mia_draws(
            feature(forget.logits, forget.labels),
            feature(unseen.logits, unseen.labels),
            n_splits=self.n_splits,
            seed=self.seed,
            draws=self.draws,
        )
        return {self.key: mean, f"{self.key}_std": std}

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
                    "definition": "mean CV accuracy of LogisticRegression on the feature, D_f (1) vs unseen "
                    "samples (0), balanced by subsampling the larger set (NeurIPS 2023 starting kit), mean "
                    "over the subsample draws",
                    "nonmembers": "D_test (random forgetting); the forgotten classes' test images (class-wise)",
                    "draws": self.draws,
                },
            ),
            Column(
                f"{self.key}_std",
                order=self.order + 1,
                ideal=None,
                direction="diagnostic",
                table=False,
                extra={
                    "definition": f"std of {self.key} over its {self.draws} subsample draws (one draw's noise)",
                    "spread_of": self.key,
                },
            ),
        ]


class MIALoss(LogisticMIA):
    """`mia_loss`: the attack on per-sample cross-entropy loss -log p_y."""

    key = "mia_loss"
    order = 70
    label = "MIA-loss"
    feature = staticmethod(ce_loss)
    feature_doc = "cross-entropy loss -log p_y"
