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

    def __init__(self, components: Sequence[str] = DEFAULT_COMPONENTS, key: str = "avg_gap"):
        components = tuple(str(c) for c in components)
        if not components:
            raise ConfigError(f"eval.metrics.{key}.components", [], "a non-empty list of metric names")
        self.components, self.key = components, str(key)

    def compare(self, model: dict[str, float], retrain: dict[str, float]) -> dict[str, float]:
        missing = [c for c in self.components if c not in model or c not in retrain]
        if missing:
            raise UserError(
                f"{self.key} needs metrics {missing} for the unlearned and Retrain models; add the metrics "
                f"that compute them to eval.metrics (accuracy, mia_efficacy) or set "
                f"eval.metrics.{self.key}.components"
            )
        gaps = [abs(model[c] - retrain[c]) for c in self.components]
        return {self.key: sum(gaps) / len(gaps)}

    def columns(self) -> list[Column]:
        tuning = (
            self.key != "avg_gap"
        )  # a second Avg Gap (the tuning objective) stays out of the console table
        return [
            Column(
                self.key,
                order=91 if tuning else 90,
                label="TuneGap" if tuning else "AvgGap",
                ideal=0.0,
                direction="lower",
                table=not tuning,
                extra={
                    "components": list(self.components),
                    "definition": "mean of |model - retrain| over the components (fractions); absent without a "
                    "Retrain model",
                },
            )
        ]
