"""The seed papers' claims, checked on finished runs (results.json dicts) with their noise stated.

Each claim is a difference that the paper says is positive, paired by seed (d_s for seed s). Its mean over
the n seeds is compared with its noise: the standard error of that mean from

- the seed std: the std of d_s over the seeds (ddof 1; none with one seed), and
- the subsample std: the loss / entropy MIAs' spread over their subsample draws (`<key>_std`, one draw's
  std, divided by sqrt(draws) for the reported mean of the draws), root-mean-square over the seeds,

combined as sqrt(seed std^2 + subsample std^2) / sqrt(n). A mean within `K` standard errors of 0 reads
"not distinguishable"; otherwise the claim "holds" (positive) or "does NOT hold" (negative).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

K = 2.0  # standard errors a difference must exceed to be told apart from noise
NOT_DISTINGUISHABLE = "not distinguishable"


def by(runs: list[dict], **match) -> list[dict]:
    """The finished (status ok) runs whose fields equal `match`."""
    return [r for r in runs if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items())]


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def subsample_std(run: dict, key: str, who: str = "unlearned") -> float:
    """The subsample noise of `who`'s `key` in `run`: its one-draw std over sqrt(draws); 0 for a metric
    without subsampling (accuracies) or a run from before the draws were recorded."""
    values = run["metrics"] if who == "unlearned" else run[who]["metrics"]
    std = values.get(f"{key}_std")
    draws = run.get("metric_info", {}).get(key, {}).get("draws") or 1
    return float(std) / math.sqrt(draws) if std is not None else 0.0


@dataclass
class Verdict:
    mean: float  # mean difference over seeds (fraction)
    seed_std: float | None  # None with one seed
    subsample_std: float
    se: float  # the mean's combined standard error
    n: int
    verdict: str

    def text(self) -> str:
        seeds = f"seed std {pct(self.seed_std)}" if self.seed_std is not None else "one seed: no seed std"
        return (
            f"mean difference {pct(self.mean):s} points over {self.n} seed{'s' if self.n != 1 else ''}, noise "
            f"{K:g} SE = {pct(K * self.se)} ({seeds}, subsample std {pct(self.subsample_std)}) -> {self.verdict}"
        )


def judge(diffs: Sequence[float], subsample_stds: Sequence[float] | None = None) -> Verdict:
    """The verdict on paired differences `diffs` (positive: the claim's direction), see the module docstring."""
    if not diffs:
        raise ValueError("a claim needs at least one seed's difference")
    n = len(diffs)
    mean = statistics.fmean(diffs)
    seed_std = statistics.stdev(diffs) if n > 1 else None
    subs = list(subsample_stds or [0.0] * n)
    sub = math.sqrt(statistics.fmean(s * s for s in subs))
    se = math.sqrt((seed_std or 0.0) ** 2 + sub**2) / math.sqrt(n)
    if abs(mean) <= K * se:
        verdict = NOT_DISTINGUISHABLE
    else:
        verdict = "holds" if mean > 0 else "does NOT hold"
    return Verdict(mean, seed_std, sub, se, n, verdict)


def judge_all(verdicts: Sequence[Verdict]) -> str:
    """A claim made of several conditions: holds when each holds, does NOT hold when one does not."""
    words = {v.verdict for v in verdicts}
    if "does NOT hold" in words:
        return "does NOT hold"
    return "holds" if words == {"holds"} else NOT_DISTINGUISHABLE


# --------------------------------------------------------------------------------------------- the claims


def interpolate(points: list[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation of y at x through `points` sorted by x; None outside their span."""
    points = sorted(points)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def imu_claim(imu_runs: list[dict], ga_runs: list[dict], label: str) -> list[str]:
    """IMU (Fan et al.): at GA's forget accuracy, ~30 % better utility. Utility loss = original test acc - test
    acc; the difference is 0.7 x GA's loss - IMU's loss at IMU's forget accuracy (GA's lr curve, interpolated)."""
    lines, diffs = [], []
    for r in imu_runs:
        curve = [(g["metrics"]["forget_acc"], g["metrics"]["test_acc"]) for g in by(ga_runs, seed=r["seed"])]
        forget, test = r["metrics"]["forget_acc"], r["metrics"]["test_acc"]
        original = r["original"]["metrics"]["test_acc"]
        ga_test = interpolate(curve, forget)
        if ga_test is None:
            span = f"{pct(min(c[0] for c in curve))}-{pct(max(c[0] for c in curve))}" if curve else "none"
            lines.append(
                f"- {label}, seed {r['seed']}: IMU's forget accuracy {pct(forget)} % lies outside GA's "
                f"curve (forget accuracy {span} %) -> cannot be matched"
            )
            continue
        imu_loss, ga_loss = original - test, original - ga_test
        diffs.append(0.7 * ga_loss - imu_loss)
        lines.append(
            f"- {label}, seed {r['seed']}: forget accuracy {pct(forget)} %; test accuracy IMU {pct(test)} vs "
            f"GA {pct(ga_test)} (original {pct(original)}): utility loss {pct(imu_loss)} vs {pct(ga_loss)} points"
        )
    if diffs:
        lines.append(f"- {label}, 0.7 x GA's utility loss - IMU's: {judge(diffs).text()}")
    return lines


def gradtau_claim(runs: list[dict], label: str, tuned: str = "") -> list[str]:
    """∇τ (Trippa et al.): its loss-based MIA is closer to 0.5 than GA's and than FT's; one verdict per rival
    on |rival - 0.5| - |∇τ - 0.5|, with the MIAs' subsample noise."""
    lines, diffs, subs = [], {"GA": [], "FT": []}, {"GA": [], "FT": []}
    for seed in sorted({r["seed"] for r in by(runs, method="gradtau")}):
        found = {m: by(runs, method=m, seed=seed) for m in ("gradtau", "ga", "ft")}
        if not all(found.values()):
            continue
        run = {m: rs[0] for m, rs in found.items()}
        mia = {m: r["metrics"]["mia_loss"] for m, r in run.items()}
        noise = {m: subsample_std(r, "mia_loss") for m, r in run.items()}
        for rival, key in (("GA", "ga"), ("FT", "ft")):
            diffs[rival].append(abs(mia[key] - 0.5) - abs(mia["gradtau"] - 0.5))
            subs[rival].append(math.hypot(noise[key], noise["gradtau"]))
        lines.append(
            f"- {label}, seed {seed}: loss-MIA {tuned}∇τ {pct(mia['gradtau'])}, GA {pct(mia['ga'])}, "
            f"FT {pct(mia['ft'])} (ideal 50)"
        )
    for rival in ("GA", "FT"):
        if diffs[rival]:
            verdict = judge(diffs[rival], subs[rival])
            lines.append(f"- {label}, ∇τ closer to 50 than {rival}: {verdict.text()}")
    return lines


def mnemonic_claim(runs: list[dict], label: str) -> list[str]:
    """Mnemonic codes (Yamashita et al.): the forgotten class's test accuracy (the paper's E_F is the error on
    that class's test images) <= 1 %, and the remaining classes' test accuracy within 3 points of the
    (code-trained) original's."""
    lines, forget_margin, drop_margin = [], [], []
    for r in runs:
        forget = r["metrics"]["test_forget_acc"]
        drop = r["original"]["metrics"]["test_acc"] - r["metrics"]["test_acc"]
        forget_margin.append(0.01 - forget)
        drop_margin.append(0.03 - drop)
        lines.append(
            f"- {label}, seed {r['seed']}: forgotten class's test accuracy {pct(forget)} %, remaining-class test "
            f"accuracy {'down' if drop >= 0 else 'up'} {pct(abs(drop))} points"
        )
    if runs:
        forget_v, drop_v = judge(forget_margin), judge(drop_margin)
        lines += [
            f"- {label}, 1 % - forgotten class's test accuracy: {forget_v.text()}",
            f"- {label}, 3 points - remaining classes' drop: {drop_v.text()}",
            f"- {label}, the claim (both): {judge_all([forget_v, drop_v])}",
        ]
    return lines


def no_op_lines(
    tuned_runs: list[dict], label: str, within: float = 0.01, curves: dict | None = None
) -> list[str]:
    """A flag for each tuned method whose forget accuracy stays within `within` (1 point) of the original's on
    average over its seeds: tuned to doing nothing. With `curves` (method -> its tuning's coarse pass, as
    [(strength, forget acc, tune_gap)]), each flag says whether that curve shows the method cannot forget."""
    lines = []
    for method in sorted({r["method"] for r in by(tuned_runs)} - {"none", "retrain"}):
        gaps = [
            abs(r["metrics"]["forget_acc"] - r["original"]["metrics"]["forget_acc"])
            for r in by(tuned_runs, method=method)
        ]
        if gaps and statistics.fmean(gaps) <= within:
            curve = (curves or {}).get(method)
            lines.append(
                f"- **no-op**: tuned {method} ({label}) keeps the original's forget accuracy within "
                f"{pct(statistics.fmean(gaps))} points (flagged within {pct(within)})"
                + (f"; {curve_verdict(curve)}" if curve else "")
            )
    return lines


def curve_verdict(curve: list[tuple[float, float, float]], forgets_by: float = 0.05) -> str:
    """Whether a tuning curve [(strength, forget acc, tune_gap)] holds a point that forgets (forget accuracy
    `forgets_by` below the curve's highest) at a better tune_gap than its points that do not: if none does,
    the method cannot forget here without doing worse than doing nothing."""
    top = max(acc for _, acc, _ in curve)
    kept = [gap for _, acc, gap in curve if acc > top - forgets_by]
    useful = [(s, acc, gap) for s, acc, gap in curve if acc <= top - forgets_by and gap < min(kept)]
    points = ", ".join(f"{s:g}: forget {100 * acc:.1f} %, tune_gap {gap:.3f}" for s, acc, gap in curve)
    if useful:
        return f"its tuning curve has points that forget and do better ({points}): a tuning miss"
    if len(kept) == len(curve):
        return f"its tuning curve over the whole declared range never forgets ({points})"
    return f"its tuning curve over the whole declared range forgets only where it does worse ({points})"
