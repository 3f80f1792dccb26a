"""Statistics over a setting's runs: mean and spread over seeds, gaps to Retrain, diagnostic flags (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from unlearnbench.report.runs import Run


@dataclass(frozen=True)
class Stat:
    """Mean and sample std (ddof=1) over ``n`` values; ``std`` is 0.0 when ``n == 1``."""

    mean: float
    std: float
    n: int


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the finite values; ``None`` when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None
    n = len(xs)
    mean = math.fsum(xs) / n
    # One seed has no spread to estimate: report 0.0 and let the renderer show it as undefined.
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return Stat(mean=mean, std=std, n=n)


def summarize_dicts(dicts: Sequence[Mapping[str, float]]) -> dict[str, Stat]:
    """Per-key :func:`summarize` over a list of metric dicts (keys may differ between dicts)."""
    keys = {k for d in dicts for k in d}
    out = {k: summarize(d.get(k) for d in dicts) for k in keys}
    return {k: s for k, s in out.items() if s is not None}


def subtract(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    """``a - b`` on the keys both hold."""
    return {k: a[k] - b[k] for k in a if k in b}


def run_gap(run: Run) -> dict[str, float]:
    """The run's gap to Retrain: the stored ``gap`` or, when absent, metrics minus retrain metrics."""
    if run.gap:
        return dict(run.gap)
    return subtract(run.metrics, run.retrain) if run.retrain else {}


def avg_abs_gap(
    model: Mapping[str, float], retrain: Mapping[str, float], components: Sequence[str]
) -> float | None:
    """Mean |model - retrain| over ``components``, as the runner computes ``avg_gap``; ``None`` if one is missing."""
    if not components or any(c not in model or c not in retrain for c in components):
        return None
    return math.fsum(abs(model[c] - retrain[c]) for c in components) / len(components)


def flag_counts(
    dicts: Sequence[Mapping[str, float]], diag: Mapping[str, tuple[str, float]]
) -> dict[str, tuple[int, int]]:
    """Per flagged metric: (seeds whose flag value is above its threshold, seeds with the flag), when > 0."""
    out: dict[str, tuple[int, int]] = {}
    for key, (metric, threshold) in diag.items():
        values = [d[key] for d in dicts if key in d]
        flagged = sum(v > threshold for v in values)
        if flagged:
            out[metric] = (flagged, len(values))
    return out
