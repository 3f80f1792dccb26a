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

    A constant representation shares no structure with anything: 0.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"expected [n, d] features of the same n samples, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return pairwise_cka({"x": x, "y": y}, ["y"])[("x", "y")]


def pairwise_cka(features: dict[str, torch.Tensor], references: list[str]) -> dict[tuple[str, str], float]:
    """CKA of every model's features with each reference's: (model, reference) -> value, 1 for a model with
    itself. Each model's centred features and self-similarity are computed once, each pair once: through the
    feature-space [d, d] products, or the sample-space [n, n] ones when there are fewer samples than units."""
    centred = {who: f.double() - f.double().mean(dim=0) for who, f in features.items()}
    gram = any(f.shape[0] < f.shape[1] for f in centred.values())
    own = {who: f @ f.T if gram else f.T @ f for who, f in centred.items()}
    norms = {who: torch.linalg.norm(k) for who, k in own.items()}
    out: dict[tuple[str, str], float] = {}
    for who in features:
        for ref in references:
            if who == ref:  # exactly 1, not 1 up to rounding
                out[who, ref] = 1.0
            elif (ref, who) in out:  # symmetric
                out[who, ref] = out[ref, who]
            elif norms[who] == 0 or norms[ref] == 0:
                out[who, ref] = 0.0
            else:
                cross = (
                    (own[who] * own[ref]).sum()
                    if gram
                    else torch.linalg.norm(centred[ref].T @ centred[who]) ** 2
                )
                # Cauchy-Schwarz bounds it by 1; rounding may not
                out[who, ref] = min(1.0, float(cross / (norms[who] * norms[ref])))
    return out


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
            feats = {who: o[split].features for who, o in outputs.items() if split in o and len(o[split])}
            references = [ref for ref in REFERENCES if ref in feats]
            sims = pairwise_cka(feats, references)
            for who in feats:
                mine = {ref: sims[who, ref] for ref in references}
                out[who].update({f"cka_{ref}_{split}": value for ref, value in mine.items()})
                if len(mine) == 2 and (where := position(mine["retrain"], mine["original"])) is not None:
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
