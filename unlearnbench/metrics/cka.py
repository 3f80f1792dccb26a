"""Representation similarity: linear CKA between a model's penultimate features and the reference models'.

Kim, Cha & Kim, "Are We Truly Forgetting? A Critical Re-examination of Machine Unlearning Evaluation
Protocols" (arXiv 2503.06991) compare unlearned and retrained representations with CKA: a method can match
Retrain's outputs while its features stay the original's. Linear CKA is from Kornblith, Norouzi, Lee &
Hinton, "Similarity of Neural Network Representations Revisited" (ICML 2019):

    CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F),   Xc, Yc: column-centred [n, d] features

of the same n samples; 1 for representations equal up to rotation and isotropic scaling, near 0 for unrelated
ones. Per split in `splits` (default D_f and D_test), each model gets its CKA with Retrain (`cka_retrain_*`)
and with the original (`cka_original_*`), and its position between the two (`cka_position_*`): with
d = 1 - CKA, position = d(model, Retrain) / (d(model, Retrain) + d(model, original)), 0 at Retrain and 1 at
the original. Every value's ideal is Retrain's. Without a Retrain model only `cka_original_*` is reported.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearnbench.errors import ConfigError
from unlearnbench.metrics.base import Column, Metric

SPLITS = ("forget", "test", "retain", "val", "test_forget")
REFERENCES = ("retrain", "original")


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations [n, d1] and [n, d2] of the same n samples (float64 inside).

    Computed through whichever of the feature-space [d1, d2] or sample-space [n, n] products is smaller.
    A constant representation shares no structure with anything: 0.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"expected [n, d] features of the same n samples, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    x = x.double() - x.double().mean(dim=0)
    y = y.double() - y.double().mean(dim=0)
    if x.shape[0] < max(x.shape[1], y.shape[1]):  # few samples: the n x n Gram matrices are the smaller
        kx, ky = x @ x.T, y @ y.T
        cross, norm_x, norm_y = (kx * ky).sum(), torch.linalg.norm(kx), torch.linalg.norm(ky)
    else:
        cross = torch.linalg.norm(y.T @ x) ** 2
        norm_x, norm_y = torch.linalg.norm(x.T @ x), torch.linalg.norm(y.T @ y)
    if norm_x == 0 or norm_y == 0:
        return 0.0
    return min(1.0, float(cross / (norm_x * norm_y)))  # Cauchy-Schwarz bounds it by 1; rounding may not


def position(to_retrain: float, to_original: float) -> float | None:
    """Where a model sits from Retrain (0) to the original (1) by CKA distance; None if those two coincide."""
    far_r, far_o = 1.0 - to_retrain, 1.0 - to_original
    total = far_r + far_o
    return None if total <= 0 else min(1.0, max(0.0, far_r / total))


class RepresentationSimilarity(Metric):
    """Linear CKA of each model's penultimate features with Retrain's and the original's (module docstring)."""

    def __init__(self, splits: Sequence[str] = ("forget", "test")):
        splits = [splits] if isinstance(splits, str) else list(splits)
        bad = [s for s in splits if s not in SPLITS]
        if not splits or bad:
            raise ConfigError(
                "eval.metrics.cka.splits", bad or splits, f"a non-empty list of {', '.join(SPLITS)}"
            )
        self.compared_splits = tuple(dict.fromkeys(splits))

    def between_models(self, outputs: dict[str, dict]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {who: {} for who in outputs}
        for split in self.compared_splits:
            for who, mine in outputs.items():
                if split not in mine or not len(mine[split]):
                    continue
                sims = {  # a model against itself: exactly 1, not 1 up to rounding
                    ref: 1.0 if ref == who else linear_cka(mine[split].features, outputs[ref][split].features)
                    for ref in REFERENCES
                    if ref in outputs
                }
                out[who].update({f"cka_{ref}_{split}": value for ref, value in sims.items()})
                if len(sims) == 2 and (where := position(sims["retrain"], sims["original"])) is not None:
                    out[who][f"cka_position_{split}"] = where
        return out

    def columns(self) -> list[Column]:
        paper = "Kim, Cha & Kim, arXiv 2503.06991; linear CKA: Kornblith et al. ICML 2019"
        columns = []
        for i, split in enumerate(self.compared_splits):
            short = {"forget": "f", "test": "t", "test_forget": "tf"}.get(split, split)
            on = f"the penultimate features on {split}"
            columns += [
                Column(
                    f"cka_position_{split}",
                    order=140 + 3 * i,
                    label=f"CKApos-{short}",
                    extra={
                        "definition": f"where {on} sit from Retrain (0) to the original (1): (1 - CKA to Retrain) / "
                        "(sum of the CKA distances to Retrain and to the original)",
                        "paper": paper,
                    },
                ),
                Column(
                    f"cka_retrain_{split}",
                    order=141 + 3 * i,
                    table=False,
                    extra={"definition": f"linear CKA of {on} with Retrain's", "paper": paper},
                ),
                Column(
                    f"cka_original_{split}",
                    order=142 + 3 * i,
                    table=False,
                    extra={"definition": f"linear CKA of {on} with the original's", "paper": paper},
                ),
            ]
        return columns
