"""MIA-Efficacy (SalUn, Fan et al. ICLR 2024; l1-sparse, Jia et al. NeurIPS 2023).

An RBF SVC (C=3, gamma="auto") is fitted on a per-sample feature of members = the first |D_test|
retain samples in dataset order (label 1) and non-members = D_test (label 0); the score is the share
of D_f that the attack predicts non-member. Higher means the forget set looks less like training
data; compare with the Retrain model's value, not with 1.
"""

from __future__ import annotations

from unlearnbench.errors import ConfigError
from unlearnbench.metrics.attacks import svc_mia_efficacy
from unlearnbench.metrics.features import FEATURES


class MIAEfficacy:
    def __init__(self, feature: str = "confidence"):
        if feature not in FEATURES:
            raise ConfigError("eval.metrics.mia_efficacy.feature", feature, sorted(FEATURES))
        self.feature = feature

    def __call__(self, outputs) -> dict[str, float]:
        test, retain, forget = outputs["test"], outputs["retain"], outputs["forget"]
        n = min(len(test), len(retain))
        feat = FEATURES[self.feature]
        members = feat(retain.logits[:n], retain.labels[:n])
        nonmembers = feat(test.logits, test.labels)
        target = feat(forget.logits, forget.labels)
        return {"mia_efficacy": svc_mia_efficacy(members, nonmembers, target)}

    def info(self) -> dict[str, dict]:
        return {"mia_efficacy": {"direction": "closer to retrain", "ideal": "retrain value",
                                 "feature": self.feature}}
