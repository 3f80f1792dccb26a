"""Avg Gap (SalUn, Fan et al. ICLR 2024; l1-sparse, Jia et al. NeurIPS 2023): how far the unlearned
model is from the Retrain model, averaged over the headline numbers.

avg_gap = mean over (UA, RA, TA, MIA-Efficacy) of |unlearned - Retrain|, same seed and forget set.
UA = 1 - forget_acc, so its gap is |forget_acc gap|. Values are fractions (the papers print
percentages: multiply by 100). Lower is better, ideal 0. Absent (not an error) without a Retrain
model (eval.retrain=false). Computed for the unlearned and the original model (doing nothing scores this).
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearnbench.errors import ConfigError, UserError
from unlearnbench.metrics.base import Column, Metric

DEFAULT_COMPONENTS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")


class AvgGap(Metric):
    """Mean absolute gap to Retrain over `components` (metric keys computed for both models)."""

    def __init__(self, components: Sequence[str] = DEFAULT_COMPONENTS):
        components = tuple(str(c) for c in components)
        if not components:
            raise ConfigError("eval.metrics.avg_gap.components", [], "a non-empty list of metric names")
        self.components = components

    def compare(self, model: dict[str, float], retrain: dict[str, float]) -> dict[str, float]:
        missing = [c for c in self.components if c not in model or c not in retrain]
        if missing:
            raise UserError(
                f"avg_gap needs metrics {missing} for the unlearned and Retrain models; add the metrics "
                f"that compute them to eval.metrics (accuracy, mia_efficacy) or set "
                f"eval.metrics.avg_gap.components"
            )
        gaps = [abs(model[c] - retrain[c]) for c in self.components]
        return {"avg_gap": sum(gaps) / len(gaps)}

    def columns(self) -> list[Column]:
        return [Column("avg_gap", order=90, label="AvgGap", ideal=0.0, direction="lower", extra={
            "components": list(self.components),
            "definition": "mean of |model - retrain| over the components (fractions); absent without a "
                          "Retrain model",
        })]
