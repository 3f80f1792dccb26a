"""U-LiRA (Hayes et al., "Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense of
Privacy", arXiv 2403.01218): can a per-example attack tell the unlearned model from a Retrain model?

Definition (N = num_shadows, phi = logit-scaled confidence log p_y - log sum_{k != y} p_k):
- Shadows: the half-forget family of `shadows.py`: for k < N a seeded random half F_k of D_f,
  `unlearned_k` = the method applied to the run's original model to forget F_k and `retrained_k` =
  trained from scratch without F_k (seed 1000 + seed_offset + k; shared with `lira`).
- Per forget example e, an "unlearned" Gaussian of phi_e over the unlearned_k with e in F_k and a
  "retrained" Gaussian over the retrained_k with e in F_k (about N/2 values each; fix_variance,
  default true, pools one std per group as LiRA recommends for few shadows).
- Score of a target model on e: log N(phi_e; unlearned) - log N(phi_e; retrained).
- Targets: positives = the run's unlearned model on every e in D_f, negatives = the run's Retrain
  model on every e in D_f (so eval.retrain must be on; without it the metric is skipped and its info
  says so). Balanced by construction: |D_f| of each.
- ulira_acc: accuracy of the likelihood-ratio decision "score > 0 => unlearned" over the 2 |D_f|
  (model, example) pairs. Its expectation is exactly 0.5 when unlearned and retrained confidences
  are identically distributed, the ideal. ulira_auc, ulira_tpr@1%fpr, ulira_tpr@0.1%fpr come from
  the same scores over all thresholds (ideal 0.5, 0.01, 0.001).
"""

from __future__ import annotations

import logging

import numpy as np

from unlearnbench.metrics.base import Column, Metric
from unlearnbench.metrics.lib.attacks import attack_summary, lira_scores
from unlearnbench.metrics.lib.shadows import check_options, half_shadows, phi, stack_phi
from unlearnbench.metrics.lira import summary_keys

log = logging.getLogger(__name__)

SKIP_NOTE = "U-LiRA needs the Retrain model as its negative target: skipped unless eval.retrain=true"


def decision_accuracy(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Balanced accuracy of "score > 0 => positive"."""
    return float(((positive_scores > 0).mean() + (negative_scores <= 0).mean()) / 2.0)


class ULiRA(Metric):
    """Per-example unlearned-vs-retrained likelihood-ratio attack (module docstring)."""

    needs_shadows = True

    def __init__(self, num_shadows: int = 16, seed_offset: int = 0, fix_variance: bool = True):
        self.num_shadows, self.seed_offset = check_options("ulira", num_shadows, seed_offset)
        self.fix_variance = bool(fix_variance)

    def with_shadows(self, ctx) -> dict[str, float]:
        retrain = ctx.models.get("retrain")
        if retrain is None:
            log.warning("ulira %s", SKIP_NOTE)
            return {}
        masks, retrained = half_shadows(ctx, "retrained", self.num_shadows, self.seed_offset)
        _, unlearned = half_shadows(ctx, "unlearned", self.num_shadows, self.seed_offset)
        forgot = masks.numpy()
        # Rows 0..N-1 unlearned shadows, N..2N-1 retrained ones; only entries with e in F_k count.
        shadow_phi = np.concatenate([stack_phi(unlearned, "forget"), stack_phi(retrained, "forget")])
        none = np.zeros_like(forgot)
        in_mask = np.concatenate([forgot, none])
        out_mask = np.concatenate([none, forgot])
        targets = np.stack(
            [
                phi(ctx.predict(ctx.models["unlearned"], ctx.splits.forget)),
                phi(ctx.predict(retrain, ctx.splits.forget)),
            ]
        )
        scores = lira_scores(
            targets, shadow_phi, in_mask, fix_variance=self.fix_variance, shadow_out_mask=out_mask
        )
        labels = np.concatenate([np.ones(scores.shape[1], bool), np.zeros(scores.shape[1], bool)])
        summary = attack_summary(scores.ravel(), labels)
        return {"ulira_acc": decision_accuracy(scores[0], scores[1]), **summary_keys("ulira", summary)}

    def columns(self) -> list[Column]:
        common = {
            "num_shadows": self.num_shadows,
            "seed_offset": self.seed_offset,
            "fix_variance": self.fix_variance,
            "requires": SKIP_NOTE,
            "definition": "U-LiRA (Hayes et al. arXiv 2403.01218): per-example Gaussians of phi from N "
            "unlearned vs N retrained shadows each forgetting a random half of D_f; "
            "targets: the unlearned model (positive) vs the Retrain model (negative) on "
            "D_f; see unlearnbench/metrics/ulira.py",
        }
        return [
            Column(
                "ulira_acc", order=110, label="U-LiRA", ideal=0.5, direction="closer to 0.5", extra=common
            ),
            Column("ulira_auc", order=111, ideal=0.5, direction="closer to 0.5", table=False, extra=common),
            Column(
                "ulira_tpr@1%fpr",
                order=112,
                ideal=0.01,
                direction="lower (down to 0.01)",
                table=False,
                extra=common,
            ),
            Column(
                "ulira_tpr@0.1%fpr",
                order=113,
                ideal=0.001,
                direction="lower (down to 0.001)",
                table=False,
                extra=common,
            ),
        ]
