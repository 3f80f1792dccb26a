"""LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022) applied to
the unlearned model: does it still treat the forget set like training data?

Definition (N = num_shadows, phi = logit-scaled confidence log p_y - log sum_{k != y} p_k):
- Shadows: the half-forget family of `shadows.py`: for k < N a seeded random half F_k of D_f and
  `retrained_k`, trained from scratch without F_k (seed 1000 + seed_offset + k, cached).
- Members: D_f (trained on by the original, then unlearned). Non-members: D_test (never trained
  on). Both are cut to n = min(|D_f|, |D_test|) by a seeded sample, so the two classes are balanced.
- Per example e, the "out" Gaussian of phi_e over the shadows that never trained on e (e in F_k
  for a forget example: about N/2 shadows; every shadow for a test example). Score = LiRA's offline
  one-sided test z = (phi_e(target) - mu_out) / sigma_out (higher = member).
  Why offline: test examples have no "in" shadows at all, so the online ratio would use a
  per-example "in" Gaussian for members but a global fallback for non-members, two different rules;
  on planted data with no memory at all that alone gave AUC ~0.74. The offline score is one rule.
- fix_variance (default true): one pooled std per group instead of per-example stds, which LiRA
  recommends with few shadow models (< 64).
- Reported for the unlearned model: lira_acc (best balanced accuracy over thresholds), lira_auc,
  lira_tpr@1%fpr, lira_tpr@0.1%fpr. The ideal is what the Retrain model gets on the same examples
  (it never saw D_f), reported as lira_acc_retrain / lira_auc_retrain when eval.retrain is on.
"""

from __future__ import annotations

import numpy as np

from unlearnbench.metrics.base import Column, Metric
from unlearnbench.metrics.lib.attacks import attack_summary, lira_offline_scores
from unlearnbench.metrics.lib.shadows import check_options, half_shadows, phi, stack_phi

_SAMPLE_STREAM = 7  # third seed word: keeps this sample's generator apart from the shadow masks'


def balanced_sample(
    n_members: int, n_nonmembers: int, seed: int, seed_offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions of n = min(n_members, n_nonmembers) members and non-members, seeded."""
    n = min(n_members, n_nonmembers)
    rng = np.random.default_rng([int(seed), int(seed_offset), _SAMPLE_STREAM])
    members = np.sort(rng.permutation(n_members)[:n])
    nonmembers = np.sort(rng.permutation(n_nonmembers)[:n])
    return members, nonmembers


def summary_keys(prefix: str, summary: dict[str, float]) -> dict[str, float]:
    """attack_summary's AUC / TPR entries under this metric's names (`<prefix>_tpr@1%fpr`, ...)."""
    return {
        f"{prefix}_auc": summary["auc"],
        f"{prefix}_tpr@1%fpr": summary["tpr_at_fpr_0.01"],
        f"{prefix}_tpr@0.1%fpr": summary["tpr_at_fpr_0.001"],
    }


class LiRA(Metric):
    """Per-example likelihood-ratio membership attack on the unlearned model (module docstring)."""

    needs_shadows = True

    def __init__(self, num_shadows: int = 16, seed_offset: int = 0, fix_variance: bool = True):
        self.num_shadows, self.seed_offset = check_options("lira", num_shadows, seed_offset)
        self.fix_variance = bool(fix_variance)

    def with_shadows(self, ctx) -> dict[str, float]:
        masks, outputs = half_shadows(ctx, "retrained", self.num_shadows, self.seed_offset)
        forget, test = ctx.splits.forget, ctx.splits.test
        members, nonmembers = balanced_sample(len(forget), len(test), ctx.seed, self.seed_offset)
        shadow_phi = np.concatenate(
            [stack_phi(outputs, "forget")[:, members], stack_phi(outputs, "test")[:, nonmembers]], axis=1
        )
        # A shadow is "out" for e in F_k (trained without it) and for every test example.
        always_out = np.ones((len(outputs), len(nonmembers)), bool)
        out_mask = np.concatenate([masks.numpy()[:, members], always_out], axis=1)
        is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]

        def attack(model) -> dict[str, float]:
            on_forget, on_test = phi(ctx.predict(model, forget)), phi(ctx.predict(model, test))
            target = np.r_[on_forget[members], on_test[nonmembers]]
            scores = lira_offline_scores(target, shadow_phi, out_mask, fix_variance=self.fix_variance)
            return attack_summary(scores, is_member)

        result = attack(ctx.models["unlearned"])
        values = {"lira_acc": result["attack_accuracy"], **summary_keys("lira", result)}
        if ctx.models.get("retrain") is not None:
            reference = attack(ctx.models["retrain"])
            values.update(lira_acc_retrain=reference["attack_accuracy"], lira_auc_retrain=reference["auc"])
        return values

    def columns(self) -> list[Column]:
        common = {
            "num_shadows": self.num_shadows,
            "seed_offset": self.seed_offset,
            "variant": "offline",
            "fix_variance": self.fix_variance,
            "definition": "LiRA (Carlini et al. S&P 2022), offline, on the unlearned model: members "
            "D_f vs an equal-size sample of D_test; out-Gaussians of phi from N models "
            "retrained without a random half of D_f; see unlearnbench/metrics/lira.py",
        }
        reference = {
            "ideal": None,
            "direction": "reference (Retrain never saw D_f: about 0.5)",
            "table": False,
        }
        return [
            Column("lira_acc", order=100, label="LiRA", extra={**common, "target": "lira_acc_retrain"}),
            Column("lira_auc", order=101, table=False, extra={**common, "target": "lira_auc_retrain"}),
            Column("lira_tpr@1%fpr", order=102, table=False, extra=common),
            Column("lira_tpr@0.1%fpr", order=103, table=False, extra=common),
            Column("lira_acc_retrain", order=104, **reference, extra=common),
            Column("lira_auc_retrain", order=105, **reference, extra=common),
        ]
