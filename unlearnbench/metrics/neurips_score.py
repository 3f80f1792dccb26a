"""The NeurIPS 2023 machine-unlearning challenge score (Triantafillou et al., "Are we making progress
in unlearning? Findings from the first NeurIPS unlearning competition", arXiv 2406.09073).

Definition (N = num_shadows; the challenge used 512, we default to 16 in eval=full):
- N unlearned models: the run's one original model (trained on D_train), the method applied to it to
  forget D_f N times, run k seeded 2000 + seed_offset + k (the challenge's protocol: one original, N
  seeded unlearning runs).
- N retrained models: trained from scratch on D_r with the same seeds (cached).
- phi = log(p_y + 1e-45) - log(sum_{k != y} p_k + 1e-45) of every forget example under each model;
  per-example epsilon from single- and double-threshold tests telling the two groups apart, points
  per epsilon bucket, forget score = mean points (`forgetting_quality.forget_score_from_phi`).
- neurips_score = forget score x (mean unlearned RA / mean retrained RA) x (mean unlearned TA /
  mean retrained TA), accuracies over the N models of each group on D_r and D_test.
Higher is better, ideal 1. With small N the forget score is coarse (epsilon is capped near
ceil(ln(N - 1))) and biased low: compare methods at the same N.
"""

from __future__ import annotations

from unlearnbench.metrics.base import Column, Metric
from unlearnbench.metrics.lib.forgetting_quality import final_score, forget_score_from_phi
from unlearnbench.metrics.lib.shadows import challenge_shadows, check_options, mean_accuracy, stack_phi


class NeurIPSScore(Metric):
    """Forget score and final score of the NeurIPS 2023 unlearning challenge (module docstring)."""

    needs_shadows = True

    def __init__(self, num_shadows: int = 16, seed_offset: int = 0):
        self.num_shadows, self.seed_offset = check_options("neurips_score", num_shadows, seed_offset)

    def with_shadows(self, ctx) -> dict[str, float]:
        unlearned = challenge_shadows(ctx, "unlearned", self.num_shadows, self.seed_offset)
        retrained = challenge_shadows(ctx, "retrained", self.num_shadows, self.seed_offset)
        forget, _ = forget_score_from_phi(stack_phi(unlearned, "forget"), stack_phi(retrained, "forget"))
        score = final_score(
            forget,
            mean_accuracy(unlearned, "retain"),
            mean_accuracy(retrained, "retain"),
            mean_accuracy(unlearned, "test"),
            mean_accuracy(retrained, "test"),
        )
        return {"neurips_score": score, "neurips_forget_score": forget}

    def columns(self) -> list[Column]:
        common = {"num_shadows": self.num_shadows, "seed_offset": self.seed_offset}
        return [
            Column(
                "neurips_score",
                order=120,
                label="NeurIPS",
                ideal=1.0,
                direction="higher",
                extra={
                    **common,
                    "definition": "forget score x RA ratio x TA ratio, unlearned vs retrained models "
                    "(Triantafillou et al. arXiv 2406.09073)",
                },
            ),
            Column(
                "neurips_forget_score",
                order=121,
                ideal=1.0,
                direction="higher",
                table=False,
                extra={
                    **common,
                    "definition": "mean points over D_f of the per-example epsilon buckets, N unlearned "
                    "vs N retrained models",
                },
            ),
        ]
