"""Membership-inference attacks on precomputed per-sample features (numpy, no models).

- `svc_mia_efficacy`: MIA-Efficacy of SalUn (Fan et al., ICLR 2024) / l1-sparse (Jia et al.,
  NeurIPS 2023): an RBF SVC trained on members vs non-members, applied to the forget set;
  `share_outside_range` says how much of the forget set lies where the SVC had no data.
- `logistic_mia`: loss / entropy attack of the NeurIPS 2023 unlearning starting kit (used by
  ∇τ, Trippa et al. arXiv 2403.14339): logistic regression, cross-validated accuracy.
- `lira_scores` / `lira_online`: per-example Gaussian likelihood-ratio test of LiRA (Carlini et al.,
  "Membership Inference Attacks From First Principles", S&P 2022) and U-LiRA (Hayes et al.,
  arXiv 2403.01218) on logit-scaled confidences; `lira_offline_scores`: LiRA's one-sided offline
  test against the "out" Gaussian only.
- `attack_summary`: accuracy / AUC / TPR at low FPR of any score that is higher for members.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.svm import SVC

from unlearnbench.errors import UserError

# StratifiedShuffleSplit's default test_size=0.1 needs >= 2 test and >= 2 train samples, i.e.
# at least 12 samples in all (6 per balanced group).
_MIN_LOGISTIC_PER_GROUP = 6


def _as_2d(feat, name: str) -> np.ndarray:
    """Features as float64 [n, d] (1-D input -> one column); empty input is a user error."""
    arr = np.asarray(feat, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError(f"membership inference: {name} features must be [n] or [n, d]")
    if arr.shape[0] == 0:
        raise UserError(f"membership inference: the {name} set is empty")
    arr = arr.reshape(arr.shape[0], -1)
    if not np.isfinite(arr).all():
        raise ValueError(f"membership inference: non-finite {name} features")
    return arr


def svc_mia_efficacy(member_feat, nonmember_feat, target_feat) -> float:
    """Share of `target_feat` samples that an SVC member/non-member attack calls non-member.

    The SVC (C=3, gamma="auto", RBF) is fitted on members (label 1) vs non-members (label 0);
    the score is 1 - mean(predict(target)), in [0, 1]. Features may be 1-D or [n, d].
    """
    members = _as_2d(member_feat, "member")
    nonmembers = _as_2d(nonmember_feat, "non-member")
    target = _as_2d(target_feat, "target")
    x = np.concatenate([members, nonmembers])
    y = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(x, y)
    return float(1.0 - clf.predict(target).mean())


def share_outside_range(fitted_feat, target_feat, tail: float = 0.01) -> float:
    """Share of `target_feat` samples outside the central range of `fitted_feat` (extrapolation).

    The range is [q_tail, q_(1 - tail)] of the fitted features, per feature dimension; a sample is
    outside when any of its features is. An RBF SVC has (almost) no training data there, so its
    prediction for those samples is set by its intercept rather than by the data. Quantiles, not
    min / max, so that a few misclassified fitted samples do not stretch the range.
    """
    fitted = _as_2d(fitted_feat, "fitted")
    target = _as_2d(target_feat, "target")
    low, high = np.quantile(fitted, [tail, 1.0 - tail], axis=0)
    outside = ((target < low) | (target > high)).any(axis=1)
    return float(outside.mean())


def logistic_mia(forget_feat, test_feat, n_splits: int = 10, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic-regression attack telling forget from test samples.

    The larger set is shuffled with ``np.random.default_rng(seed)`` and cut to the smaller one's
    size; forget samples are labelled 1, test samples 0; `LogisticRegression()` (defaults) is scored
    by accuracy under ``StratifiedShuffleSplit(n_splits, random_state=0)`` (test size 0.1) and the
    mean over splits is returned. 0.5 means the forget set is indistinguishable from unseen data.
    """
    forget = _as_2d(forget_feat, "forget")
    test = _as_2d(test_feat, "test")
    n = min(len(forget), len(test))
    if n < _MIN_LOGISTIC_PER_GROUP:
        raise UserError(
            f"logistic MIA needs >= {_MIN_LOGISTIC_PER_GROUP} forget and test samples, got "
            f"{len(forget)} forget and {len(test)} test"
        )
    rng = np.random.default_rng(seed)
    if len(forget) > n:
        forget = forget[rng.permutation(len(forget))[:n]]
    elif len(test) > n:
        test = test[rng.permutation(len(test))[:n]]
    x = np.concatenate([test, forget])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    return float(np.mean(_cv_accuracies(x, y, n_splits)))


def _cv_accuracies(x: np.ndarray, y: np.ndarray, n_splits: int) -> np.ndarray:
    """`cross_val_score(LogisticRegression(), x, y, cv=StratifiedShuffleSplit(n_splits, random_state=0),
    scoring="accuracy")`, the same numbers at half its cost (no per-split scorer and clone machinery):
    the multi-draw attacks fit it ten times per model."""
    cv = StratifiedShuffleSplit(n_splits=n_splits, random_state=0)
    scores = []
    for train, test in cv.split(x, y):
        model = LogisticRegression().fit(x[train], y[train])
        scores.append(float(np.mean(model.predict(x[test]) == y[test])))
    return np.asarray(scores)


def logistic_mia_draws(
    forget_feat, test_feat, n_splits: int = 10, seed: int = 0, draws: int = 1
) -> tuple[float, float]:
    """(mean, std) of `logistic_mia` over `draws` subsamples of the larger set, draw d seeded `seed + d`.

    One draw is the starting kit's procedure (std 0). The subsample decides which unseen samples face the
    forget set, so one draw's score moves by points between seeds of the draw; the mean over draws is the
    attack's value with that noise averaged down, the std (ddof 0) the noise of one draw.
    """
    scores = [logistic_mia(forget_feat, test_feat, n_splits, seed + d) for d in range(draws)]
    return float(np.mean(scores)), float(np.std(scores))


def _gauss_logpdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2.0 * np.pi)


def _group_stats(
    phi: np.ndarray, mask: np.ndarray, min_count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example mean/std of the masked shadow values; examples with < min_count fall back.

    Returns (mean, std, pooled_std): mean/std per example (ddof 0); where an example has fewer
    than `min_count` values in the group, its mean/std are the group's global mean/std (over all
    masked values of all examples). pooled_std is the within-example std pooled over examples
    (residuals from the per-example means), used by the fixed-variance attack.
    """
    count = mask.sum(axis=0)
    if count.sum() == 0:
        raise UserError("LiRA: a shadow group (in or out) has no models for any example")
    values = np.where(mask, phi, 0.0)
    mean = values.sum(axis=0) / np.maximum(count, 1)
    resid = np.where(mask, phi - mean, 0.0)
    var = (resid**2).sum(axis=0) / np.maximum(count, 1)
    global_mean = phi[mask].mean()
    global_std = phi[mask].std()
    # Pool within-example residuals over the examples whose own estimate is usable.
    ok = count >= min_count
    pooled_std = np.sqrt((resid[:, ok] ** 2).sum() / count[ok].sum()) if ok.any() else global_std
    mean = np.where(ok, mean, global_mean)
    std = np.where(ok, np.sqrt(var), global_std)
    return mean, std, pooled_std


def _group_gaussian(
    phi: np.ndarray, mask: np.ndarray, min_count: int, fix_variance: bool, min_std: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example (mean, std) of one shadow group, std pooled when `fix_variance`, floored at `min_std`."""
    mean, std, pooled_std = _group_stats(phi, mask, min_count)
    if fix_variance:
        std = np.full_like(std, pooled_std)
    return mean, np.maximum(std, min_std)


def _check_lira_shapes(target: np.ndarray, shadow_phi: np.ndarray, *masks: np.ndarray) -> None:
    shapes_ok = shadow_phi.ndim == 2 and target.shape[-1:] == shadow_phi.shape[1:]
    if not shapes_ok or any(m.shape != shadow_phi.shape for m in masks):
        raise ValueError(
            f"LiRA: expected shadow_phi [S, n], masks [S, n], target [..., n]; got "
            f"{shadow_phi.shape}, {[m.shape for m in masks]}, {target.shape}"
        )
    if not (np.isfinite(shadow_phi).all() and np.isfinite(target).all()):
        raise ValueError("LiRA: non-finite confidences (use logit_scaled_confidence with eps > 0)")


def lira_scores(
    target_phi,
    shadow_phi,
    shadow_in_mask,
    fix_variance: bool = False,
    min_std: float = 1e-3,
    min_count: int = 2,
    shadow_out_mask=None,
) -> np.ndarray:
    """Online LiRA log-likelihood ratio per example (higher = more member-like).

    Args:
        target_phi: logit-scaled confidences of the target model, [n] (or [T, n] for T targets).
        shadow_phi: the shadow models' confidences on the same examples, [S, n].
        shadow_in_mask: bool [S, n], True where that shadow model trained on (for U-LiRA: was
            unlearned on) the example, False where it did not (was retrained without it).
        fix_variance: use one global std per group (within-example residual std pooled over
            examples) instead of per-example stds, as LiRA suggests for few shadow models.
        min_std: floor on every std (identical shadow values would otherwise give std 0).
        min_count: examples with fewer in (or out) shadows than this use that group's global
            mean/std (over all its values), so the score is always finite.
        shadow_out_mask: bool [S, n], the "out" group; default ~shadow_in_mask. Give it when some
            (shadow, example) values belong to neither group (U-LiRA uses only the shadows that
            forgot the example, whether by unlearning or by retraining).

    Returns:
        log N(target; mu_in, s_in) - log N(target; mu_out, s_out), same shape as `target_phi`.
    """
    shadow_phi = np.asarray(shadow_phi, dtype=np.float64)
    mask = np.asarray(shadow_in_mask, dtype=bool)
    out_mask = ~mask if shadow_out_mask is None else np.asarray(shadow_out_mask, dtype=bool)
    target = np.asarray(target_phi, dtype=np.float64)
    _check_lira_shapes(target, shadow_phi, mask, out_mask)
    mu_in, s_in = _group_gaussian(shadow_phi, mask, min_count, fix_variance, min_std)
    mu_out, s_out = _group_gaussian(shadow_phi, out_mask, min_count, fix_variance, min_std)
    return _gauss_logpdf(target, mu_in, s_in) - _gauss_logpdf(target, mu_out, s_out)


def lira_offline_scores(
    target_phi,
    shadow_phi,
    shadow_out_mask,
    fix_variance: bool = False,
    min_std: float = 1e-3,
    min_count: int = 2,
) -> np.ndarray:
    """Offline (one-sided) LiRA score per example: z = (target - mu_out) / s_out (higher = member).

    Carlini et al. (S&P 2022, Sec. IV-C) test only against the "out" Gaussian of models that did not
    train on the example; their score 1 - Pr[Z > target] = Phi(z) is monotone in z, so z ranks
    examples identically and does not saturate for confident members.

    Args:
        target_phi: [n] (or [T, n]) confidences of the target model(s).
        shadow_phi: [S, n] shadow confidences; shadow_out_mask: bool [S, n], True where that shadow
            did not train on the example (other entries are ignored).
        fix_variance, min_std, min_count: as in `lira_scores`.
    """
    shadow_phi = np.asarray(shadow_phi, dtype=np.float64)
    out_mask = np.asarray(shadow_out_mask, dtype=bool)
    target = np.asarray(target_phi, dtype=np.float64)
    _check_lira_shapes(target, shadow_phi, out_mask)
    mu_out, s_out = _group_gaussian(shadow_phi, out_mask, min_count, fix_variance, min_std)
    return (target - mu_out) / s_out


def lira_online(target_phi, in_phi, out_phi, fix_variance: bool = False, min_std: float = 1e-3) -> np.ndarray:
    """Online LiRA with every shadow model either in ([S_in, n]) or out ([S_out, n]) for all examples.

    For U-LiRA, `in_phi` are models unlearned on the examples and `out_phi` models retrained
    without them. See `lira_scores` for the score and the options.
    """
    in_phi = np.asarray(in_phi, dtype=np.float64)
    out_phi = np.asarray(out_phi, dtype=np.float64)
    if in_phi.ndim != 2 or out_phi.ndim != 2 or in_phi.shape[1] != out_phi.shape[1]:
        raise ValueError(
            f"LiRA: expected in_phi [S_in, n], out_phi [S_out, n]; got {in_phi.shape}, {out_phi.shape}"
        )
    shadow = np.concatenate([in_phi, out_phi])
    mask = np.zeros(shadow.shape, dtype=bool)
    mask[: len(in_phi)] = True
    return lira_scores(target_phi, shadow, mask, fix_variance=fix_variance, min_std=min_std)


def attack_summary(scores, is_member, fpr_targets: tuple[float, ...] = (0.01, 0.001)) -> dict[str, float]:
    """Threshold-free summary of an attack whose score is higher for members.

    Returns:
        attack_accuracy: max over thresholds of balanced accuracy (TPR + TNR) / 2 (>= 0.5; LiRA's
            "accuracy").
        auc: ROC AUC (sklearn roc_auc_score).
        tpr_at_fpr_<t>: largest TPR on the ROC curve with FPR <= t, for each t in `fpr_targets`
            (keys "tpr_at_fpr_0.01", "tpr_at_fpr_0.001" by default).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(is_member, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"attack_summary: {scores.shape[0]} scores but {labels.shape[0]} labels")
    if labels.all() or not labels.any():
        raise UserError("attack summary needs both members and non-members")
    if not np.isfinite(scores).all():
        raise ValueError("attack_summary: non-finite scores")
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    out = {
        "attack_accuracy": float(np.max((tpr + 1.0 - fpr) / 2.0)),
        "auc": float(roc_auc_score(labels, scores)),
    }
    for target in fpr_targets:
        out[f"tpr_at_fpr_{target:g}"] = float(tpr[fpr <= target].max())
    return out
