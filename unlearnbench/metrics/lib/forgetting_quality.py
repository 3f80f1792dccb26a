"""Forgetting quality of the NeurIPS 2023 machine-unlearning challenge, on precomputed confidences.

Triantafillou et al., "Are we making progress in unlearning? Findings from the first NeurIPS
unlearning competition", arXiv 2406.09073. Written from the paper and from reading the public
reference (google-deepmind/unlearning_evaluation, `metric.py` / `main.py`); the behaviour below
follows that reference on the same inputs, the code is our own and vectorised over examples.

Inputs are logit-scaled confidences phi (`features.logit_scaled_confidence`, eps = 1e-45) of every
forget example under N unlearned and N retrained models, each from its own seed: arrays
[N, n_examples]. For every example an attacker tries to tell the two distributions of phi apart;
the (epsilon, delta)-DP hypothesis-testing bound turns its best error rates into an epsilon, the
epsilon into points, and the points into a score (1 = indistinguishable from retraining).
"""

from __future__ import annotations

import math

import numpy as np

from unlearnbench.errors import UserError

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0  # the double-threshold grid reaches this far beyond the peakier distribution
PEAKY_RATIO = 0.01  # range ratio below which an example gets the capped epsilon outright
BUCKET_WIDTH = 0.5

# Work arrays are [examples, 2N]: process examples in blocks of about this many elements.
_BLOCK_ELEMENTS = 4_000_000


def _test_epsilon_table(n_models: int, delta: float) -> np.ndarray:
    """Epsilon of a test as a function of its counts, table [tp, fp] of shape [N + 1, N + 1].

    tp = positives (of N) predicted positive, fp = negatives (of N) predicted positive;
    FPR = fp / N, FNR = (N - tp) / N. Per test:
      - perfect separation (FPR = FNR = 0): +inf;
      - exactly one of FPR, FNR zero: discarded (too few samples to tell), coded -inf;
      - otherwise max(log(1 - delta - FPR) - log FNR, log(1 - delta - FNR) - log FPR), where a
        negative argument of log (NaN) drops that term, clipped below at 0; a test whose two
        terms are both dropped (FPR = FNR = 1) is discarded (-inf).
    """
    tp, fp = np.meshgrid(np.arange(n_models + 1), np.arange(n_models + 1), indexing="ij")
    fpr = fp / n_models
    fnr = (n_models - tp) / n_models
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.fmax(  # fmax ignores a NaN term, like the reference's nanmax
            np.log(1.0 - delta - fpr) - np.log(fnr),
            np.log(1.0 - delta - fnr) - np.log(fpr),
        )
    table = np.where(np.isnan(best), -np.inf, np.maximum(best, 0.0))
    table[(fp == 0) | (tp == n_models)] = -np.inf
    table[n_models, 0] = np.inf
    return table


def _linspace_at(k, start, stop, num):
    """Entry k of np.linspace(start, stop, num), bit for bit: k * step + start, the last is stop."""
    step = (stop - start) / np.maximum(num - 1, 1)
    return np.where((k == num - 1) & (num > 1), stop, k * step + start)


def _grid_counts_le(values, start, stop, num) -> np.ndarray:
    """Per value c, the number of points of linspace(start, stop, num) that are <= c, exactly.

    `values` [B, M]; start, stop, num broadcast against it ([B, 1] or scalars). The arithmetic
    index (c - start) / step is exact away from grid points; values within a safe margin of one
    (rounding ties; the challenge grids put thresholds right on sample values) are settled by
    comparing with the grid values themselves.
    """
    step = (stop - start) / np.maximum(num - 1, 1)
    safe_step = np.where(step > 0, step, np.inf)  # num <= 1: no usable step, settled exactly below
    index = (values - start) / safe_step
    count = np.clip(np.floor(index) + 1, 0, num).astype(np.int64)
    # Rounding error of `index` is a few ulps of (|c| + |start| + |stop|) / step: 1e-6 is far above.
    scale = (np.abs(values).max(axis=-1, keepdims=True) + np.abs(start) + np.abs(stop)) / safe_step
    margin = 1e-6 + 64 * np.finfo(np.float64).eps * scale
    frac = index - np.floor(index)
    unsure = (frac < margin) | (frac > 1 - margin) | ~(step > 0)
    if unsure.any():
        at = np.nonzero(unsure)
        start, stop, num = (np.broadcast_to(x, values.shape)[at] for x in (start, stop, num))
        count[at] = _grid_counts_le_exact(values[at], start, stop, num, count[at])
    return count


def _grid_counts_le_exact(values, start, stop, num, count) -> np.ndarray:
    """Correct a guess of #grid points <= value (1-D arrays) by exact comparisons with the grid."""
    for _ in range(64):
        grid_at_count = _linspace_at(np.minimum(count, num - 1), start, stop, num)
        grid_below = _linspace_at(np.maximum(count - 1, 0), start, stop, num)
        move = ((count < num) & (grid_at_count <= values)).astype(np.int64)
        move -= (count > 0) & (grid_below > values)
        if not move.any():
            return count
        count = count + move
    raise RuntimeError("threshold-grid counting did not converge")  # grid not monotone: a bug


def _sort_with_codes(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each example's 2N values sorted, and coded prefix counts of the q smallest.

    first, second [n, N]. Returns values [n, 2N] ascending and prefix [n, 2N + 1] with
    prefix[:, q] = (N + 1) * #first + #second among the q smallest values, so that a set of
    consecutive sorted values (q, R] holds prefix[R] - prefix[q] = tp * (N + 1) + fp samples.
    """
    n_models = first.shape[1]
    both = np.concatenate([first, second], axis=1)
    order = np.argsort(both, axis=1, kind="stable")
    values = np.take_along_axis(both, order, axis=1)
    prefix = np.zeros((both.shape[0], both.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.where(order < n_models, n_models + 1, 1), axis=1, out=prefix[:, 1:])
    return values, prefix


def _best_over_lower_ends(values, prefix, upper_code, start, stop, num, flat_table) -> np.ndarray:
    """Max test epsilon over tests "grid point t <= phi (<= upper end) -> first group".

    A lower end t with q values below it (sorted[q-1] < t <= sorted[q]) selects the values
    (q, R], coded upper_code - prefix[q] (R = how many values the upper end admits; an upper end
    below t leaves a non-positive code, i.e. an empty set). Only the q at which some grid point
    actually falls are tests: grid points in (sorted[q-1], sorted[q]] exist iff the grid counts at
    those two values differ (with 0 below the smallest value and `num` above the largest).
    """
    counts = _grid_counts_le(values, start, stop, num)
    realised = np.diff(counts, axis=1, prepend=0, append=np.broadcast_to(num, (len(values), 1))) > 0
    codes = np.maximum(upper_code - prefix, 0)
    return np.where(realised, flat_table.take(codes), -np.inf).max(axis=1)


def _single_threshold_best(pos, neg, flat_table, thresholds_per_unit) -> np.ndarray:
    """Best test epsilon per example over single thresholds "phi >= t -> positive".

    Thresholds: linspace(min, max, ceil((max - min) * thresholds_per_unit)) over the example's
    pooled values of both groups (the reference uses torch.linspace, whose interior points can
    differ from these in the last bit; the end points, which sit on sample values, are exact).
    """
    values, prefix = _sort_with_codes(pos, neg)
    lo, hi = values[:, :1], values[:, -1:]
    num = np.ceil((hi - lo) * thresholds_per_unit).astype(np.int64)
    return _best_over_lower_ends(values, prefix, prefix[:, -1:], lo, hi, num, flat_table)


def _double_threshold_best(pos, neg, flat_table, thresholds_per_unit) -> np.ndarray:
    """Best test epsilon per example over intervals "l <= phi <= r -> peakier group".

    The peakier group is the one with the smaller range (the negative group when the ranges tie),
    w its range, min/max its extremes, B = 2. Right ends
    r_j = linspace((min + w) - B, max + B, ceil(((max + B) - ((min + w) - B)) * tpu)) and, for each,
    left ends linspace((r_j - w) - B, (r_j - w) + B, ceil(2 B tpu)): the reference's grids (numpy
    linspace, same float64 operations), counted exactly. Loops over the ~4 * tpu right ends.
    """
    rng_pos = np.ptp(pos, axis=1)
    rng_neg = np.ptp(neg, axis=1)
    swap = (rng_pos >= rng_neg)[:, None]
    peaky, other = np.where(swap, neg, pos), np.where(swap, pos, neg)
    width = np.minimum(rng_pos, rng_neg)[:, None]
    right_lo = (peaky.min(axis=1, keepdims=True) + width) - BUFFER
    right_hi = peaky.max(axis=1, keepdims=True) + BUFFER
    n_right = np.ceil((right_hi - right_lo) * thresholds_per_unit).astype(np.int64)
    n_left = int(math.ceil(2 * BUFFER * thresholds_per_unit))
    values, prefix = _sort_with_codes(peaky, other)
    best = np.full(len(pos), -np.inf)
    for j in range(int(n_right.max(initial=0))):
        r = _linspace_at(j, right_lo, right_hi, n_right)
        upper_code = np.take_along_axis(prefix, (values <= r).sum(axis=1, keepdims=True), axis=1)
        lower = ((r - width) - BUFFER, (r - width) + BUFFER, n_left)
        j_best = _best_over_lower_ends(values, prefix, upper_code, *lower, flat_table)
        np.maximum(best, np.where(j < n_right[:, 0], j_best, -np.inf), out=best)
    return best


def _validate_confidences(unlearned_phi, retrained_phi) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(unlearned_phi, dtype=np.float64)
    r = np.asarray(retrained_phi, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape:
        raise ValueError(
            f"expected unlearned and retrained confidences of one shape [N_models, n_examples], "
            f"got {u.shape} and {r.shape}"
        )
    if u.shape[0] < 2:
        raise UserError(
            f"the forgetting-quality score needs >= 2 unlearned and retrained models, got {u.shape[0]}"
        )
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("non-finite confidences (use logit_scaled_confidence with eps > 0)")
    return u, r


def per_example_epsilon(
    unlearned_phi,
    retrained_phi,
    delta: float = DELTA,
    thresholds_per_unit: int = THRESHOLDS_PER_UNIT,
    cap: float = EPSILON_CAP,
    peaky_ratio: float = PEAKY_RATIO,
) -> np.ndarray:
    """Empirical epsilon per forget example from N unlearned vs N retrained confidences.

    Args:
        unlearned_phi, retrained_phi: [N_models, n_examples] logit-scaled confidences.

    Per example (all steps vectorised over examples):
      1. Positive group = retrained if its median phi is strictly larger than the unlearned
         median, else unlearned; the other group is negative.
      2. If min(range_pos, range_neg) / max(range_pos, range_neg) < peaky_ratio (one group is
         nearly a point mass while the other is not), epsilon = cap outright.
      3. Tests (see `_single_threshold_best`, `_double_threshold_best` for the grids):
         single thresholds "phi >= t -> positive" over [min, max] of both groups at
         `thresholds_per_unit` per unit; intervals "l <= phi <= r -> peakier group".
      4. Each test's FPR / FNR gives an epsilon (`_test_epsilon_table`): perfect separation
         -> inf; FPR = 0 or FNR = 0 alone -> test discarded; else
         max(log((1 - delta - FPR) / FNR), log((1 - delta - FNR) / FPR)) clipped at >= 0.
      5. epsilon = max over the kept tests, clipped to [0, cap]; 0 if every test is discarded
         (e.g. both groups the same constant; the reference errors out there).
    The rates are exact counts in float64; the reference computes them in float32, a difference
    far below the 0.5-wide scoring buckets.
    """
    u, r = _validate_confidences(unlearned_phi, retrained_phi)
    n_models = u.shape[0]
    retrain_pos = np.median(r, axis=0) > np.median(u, axis=0)
    pos = np.where(retrain_pos, r, u).T.copy()  # [n, N]
    neg = np.where(retrain_pos, u, r).T.copy()
    flat_table = _test_epsilon_table(n_models, delta).ravel()  # index tp * (N + 1) + fp
    best = np.empty(len(pos))
    block = max(1, _BLOCK_ELEMENTS // (2 * n_models))
    for a in range(0, len(pos), block):
        sl = slice(a, a + block)
        best[sl] = np.maximum(
            _single_threshold_best(pos[sl], neg[sl], flat_table, thresholds_per_unit),
            _double_threshold_best(pos[sl], neg[sl], flat_table, thresholds_per_unit),
        )
    eps = np.clip(np.maximum(best, 0.0), 0.0, cap)  # -inf (nothing kept) -> 0, inf -> cap
    rng_pos, rng_neg = np.ptp(pos, axis=1), np.ptp(neg, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # 0 / 0 (both groups constant) is NaN, which is not < ratio: such examples are tested.
        peaky = np.minimum(rng_pos, rng_neg) / np.maximum(rng_pos, rng_neg) < peaky_ratio
    return np.where(peaky, cap, eps)


def forget_score(epsilons, n_models: int) -> float:
    """Mean points over examples; points depend on each example's epsilon bucket of width 0.5.

    With E = ceil(ln(n_models - 1)) (roughly the largest epsilon N samples per group can show):
    points = 2 ** -floor(eps / 0.5) if eps < E, else 0. So [0, 0.5) -> 1, [0.5, 1) -> 1/2,
    [1, 1.5) -> 1/4, ..., and epsilon >= E (or NaN) -> 0. E.g. N = 512: E = 7, 14 buckets; N = 2
    gives E = 0 and a score of 0 whatever the epsilons.
    """
    if n_models < 2:
        raise UserError(f"the forgetting-quality score needs >= 2 models per group, got {n_models}")
    eps = np.asarray(epsilons, dtype=np.float64).ravel()
    if eps.size == 0:
        raise UserError("the forgetting-quality score needs a non-empty forget set")
    max_eps = math.ceil(math.log(n_models - 1)) if n_models > 2 else 0
    n_buckets = int(round(max_eps / BUCKET_WIDTH))
    with np.errstate(invalid="ignore"):
        bucket = np.floor(np.maximum(eps, 0.0) / BUCKET_WIDTH)
        points = np.where(bucket < n_buckets, 0.5 ** np.where(bucket < n_buckets, bucket, 0), 0.0)
    return float(points.mean())


def forget_score_from_phi(unlearned_phi, retrained_phi, **epsilon_kwargs) -> tuple[float, np.ndarray]:
    """(forget score, per-example epsilons) from [N, n] unlearned / retrained confidences."""
    eps = per_example_epsilon(unlearned_phi, retrained_phi, **epsilon_kwargs)
    return forget_score(eps, np.shape(unlearned_phi)[0]), eps


def final_score(
    forget_score: float,
    unlearned_retain_acc: float,
    retrained_retain_acc: float,
    unlearned_test_acc: float,
    retrained_test_acc: float,
) -> float:
    """Challenge score: forget score x (RA_u / RA_r) x (TA_u / TA_r), accuracies = means over models.

    Accuracies may be fractions or percentages (only the ratios matter); not clipped at 1.
    """
    if retrained_retain_acc <= 0 or retrained_test_acc <= 0:
        raise ValueError("final_score: the retrained models' accuracies must be > 0")
    retain_ratio = unlearned_retain_acc / retrained_retain_acc
    test_ratio = unlearned_test_acc / retrained_test_acc
    return float(forget_score * retain_ratio * test_ratio)
