"""Which metrics a setting's table shows, in what order, and what the runs' ``metric_info`` says about them:
Avg Gap's components, the diagnostics that flag another metric (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from unlearnbench.report.runs import Run, is_number
from unlearnbench.report.verdicts import AVG_GAP

# Column order when metric_info gives no ``order``; metrics not listed follow alphabetically.
METRIC_ORDER: tuple[str, ...] = (
    "forget_acc",
    "retain_acc",
    "val_acc",
    "test_acc",
    "mia_efficacy",
    "mia_loss",
    "mia_entropy",
)


def order_metrics(names: Iterable[str], info: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Table columns: by ``metric_info[name]["order"]`` where given, then :data:`METRIC_ORDER`, then A-Z.

    Left out: `avg_gap` (its own "Avg Gap" column), the diagnostics (notes under the table) and a metric's
    spread over its subsample draws (``spread_of``: read by the claim checks, kept in results.json).
    """
    info = info or {}
    spreads = {name for name, desc in info.items() if desc.get("spread_of")}
    names = set(names) - {AVG_GAP} - set(diagnostics(info)) - spreads

    def key(name: str) -> tuple[int, float, str]:
        order = info.get(name, {}).get("order")
        if is_number(order):
            return (0, float(order), name)
        if name in METRIC_ORDER:
            return (1, float(METRIC_ORDER.index(name)), name)
        return (2, 0.0, name)

    return sorted(names, key=key)


def merge_metric_info(runs: Iterable[Run]) -> dict[str, dict[str, Any]]:
    """Union of the runs' ``metric_info`` (first description of a metric wins)."""
    info: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: str(r.path)):
        for name, desc in run.metric_info.items():
            info.setdefault(name, desc)
    return info


def gap_components(info: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The metrics Avg Gap averages, as the runs' ``metric_info`` records them."""
    return [str(c) for c in info.get(AVG_GAP, {}).get("components") or []]


def diagnostics(info: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """Values that flag another metric as unreliable: ``{key: (flagged metric, threshold)}``.

    Declared in ``metric_info`` with ``flags`` (e.g. ``mia_efficacy_extrapolated`` flags
    ``mia_efficacy`` above its ``threshold``); they are notes, not table columns.
    """
    return {
        name: (str(desc["flags"]), float(desc.get("threshold", 0.5)))
        for name, desc in info.items()
        if desc.get("flags")
    }
