"""MIA-Efficacy (SalUn, Fan et al. ICLR 2024; l1-sparse, Jia et al. NeurIPS 2023).

An RBF SVC (C=3, gamma="auto") is fitted on a per-sample feature of members = the first |D_test|
retain samples in dataset order (label 1) and non-members = D_test (label 0); the score is the share
of D_f that the attack predicts non-member. Higher means the forget set looks less like training
data; compare with the Retrain model's value, not with 1.

`mia_efficacy_extrapolated` is the share of D_f whose feature lies outside the 1st-99th percentile
range of the features the SVC was fitted on. Above one half, the score mostly reports the SVC's
intercept: in class-wise forgetting (fitted confidences all high, a forgotten class's all near 0)
two models that both forget the class completely can get 0 and 1.
"""

from __future__ import annotations

import numpy as np

from unlearnbench.config.checks import check_choice
from unlearnbench.metrics.base import Column, Metric
from unlearnbench.metrics.lib.attacks import share_outside_range, svc_mia_efficacy
from unlearnbench.metrics.lib.features import get_feature

# mia_efficacy_extrapolated above this share marks mia_efficacy as unreliable (in metric_info).
EXTRAPOLATION_THRESHOLD = 0.5


NONMEMBER_SPLITS = ("test", "val")


class MIAEfficacy(Metric):
    """`nonmembers: test` is SalUn's protocol (`mia_efficacy`); `val` the same attack with D_val as the unseen
    data (`mia_efficacy_val`), for tuning without reading the test split."""

    def __init__(self, feature: str = "confidence", nonmembers: str = "test"):
        get_feature(feature, "eval.metrics.mia_efficacy.feature")  # an unknown name fails at config time
        check_choice("eval.metrics.mia_efficacy.nonmembers", nonmembers, NONMEMBER_SPLITS)
        self.feature, self.nonmembers = feature, nonmembers
        self.key = "mia_efficacy" if nonmembers == "test" else f"mia_efficacy_{nonmembers}"

    def per_model(self, outputs) -> dict[str, float]:
        unseen, retain, forget = outputs[self.nonmembers], outputs["retain"], outputs["forget"]
        n = min(len(unseen), len(retain))
        feat = get_feature(self.feature)
        members = feat(retain.logits[:n], retain.labels[:n])
        nonmembers = feat(unseen.logits, unseen.labels)
        target = feat(forget.logits, forget.labels)
        return {
            self.key: svc_mia_efficacy(members, nonmembers, target),
            f"{self.key}_extrapolated": share_outside_range(np.concatenate([members, nonmembers]), target),
        }

    def columns(self) -> list[Column]:
        shown = self.nonmembers == "test"
        return [
            Column(
                self.key,
                order=60 if shown else 62,
                label="MIA-eff" if shown else "MIA-val",
                table=shown,
                extra={"feature": self.feature, "nonmembers": f"D_{self.nonmembers}"},
            ),
            Column(
                f"{self.key}_extrapolated",
                order=61 if shown else 63,
                ideal=None,
                direction="diagnostic",
                table=False,
                extra={
                    "flags": self.key,
                    "threshold": EXTRAPOLATION_THRESHOLD,
                    "definition": "share of D_f whose feature lies outside the 1st-99th percentile range of the "
                    "features the SVC was fitted on",
                    "meaning": "most of the forget set lies outside the range the attack's SVC was fitted on, so "
                    "its answer there is set by the SVC's intercept, not by the data: models that "
                    "forget equally well can score 0 or 100 (typical of class-wise forgetting); "
                    "compare forget_acc and the loss / entropy attacks instead",
                },
            ),
        ]
