"""How the report writes a number, a cell, a row's name and the notes under a table: shared by its Markdown,
LaTeX and figure renderers. Metric values are fractions in the results and percentages here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from unlearnbench.report.aggregate import Row, SettingSummary
from unlearnbench.report.columns import diagnostics, order_metrics
from unlearnbench.report.runs import is_number
from unlearnbench.report.stats import Stat
from unlearnbench.report.verdicts import AVG_GAP

DASH = "–"  # shown for "not available"
FLAG = "†"  # marks a cell whose metric a diagnostic flags as unreliable


def percent_text(fraction: float) -> str:
    """An ideal given as a fraction, in the report's unit: ``0.5`` -> ``50 %``."""
    return f"{100.0 * fraction:g} %"


def ideal_value(info: dict) -> float | None:
    """The fixed ideal (a fraction) a metric should approach, e.g. 0.5 for mia_loss; ``None`` for 'Retrain'."""
    ideal = info.get("ideal")
    return float(ideal) if is_number(ideal) else None


def metric_goal(info: dict) -> str:
    """One direction per metric from its ``metric_info``: 'closer to Retrain', 'closer to 50 %', 'lower is better'."""
    direction = str(info.get("direction") or "").strip()
    ideal = ideal_value(info)
    if not direction:
        return "no direction recorded"
    if direction.startswith("closer") and ideal is not None:
        return f"closer to {percent_text(ideal)}"
    if "retrain" in direction.lower():
        return "closer to Retrain"
    if direction in ("higher", "lower"):
        return f"{direction} is better" + (f" (ideal {percent_text(ideal)})" if ideal is not None else "")
    return direction + (f" (ideal: {info['ideal']})" if info.get("ideal") is not None else "")


def describe_metric(name: str, info: dict) -> str:
    """``forget_acc: closer to Retrain``, ``mia_loss: closer to 50 %`` (percent, as in the tables), with the
    non-members a membership attack compares the forget set with, where it says."""
    where = f" in every scenario (non-members: {info['nonmembers']})" if info.get("nonmembers") else ""
    return f"{name}: {metric_goal(info)}{where}"


# --------------------------------------------------------------------------- number formatting


def pct(x: float) -> str:
    """Fraction -> percent with one decimal."""
    return f"{100.0 * x:.1f}"


def signed_pct(x: float) -> str:
    """Fraction -> signed percentage points, ``+0.0`` rather than ``-0.0``."""
    text = f"{100.0 * x:+.1f}"
    return "+0.0" if text == "-0.0" else text


def pm_pct(stat: Stat, pm: str = "±") -> str:
    """``45.3 ± 1.2``; a single seed has no std and shows ``45.3 ± –``."""
    spread = pct(stat.std) if stat.n > 1 else DASH
    return f"{pct(stat.mean)} {pm} {spread}"


def _seconds_decimals(x: float) -> int:
    """Enough decimals to show about three significant digits of small times, two otherwise."""
    if x <= 0 or x >= 1:
        return 2
    return min(4, max(2, 2 - math.floor(math.log10(x))))


def pm_seconds(stat: Stat, pm: str = "±") -> str:
    d = _seconds_decimals(stat.mean)
    spread = f"{stat.std:.{d}f}" if stat.n > 1 else DASH
    return f"{stat.mean:.{d}f} {pm} {spread}"


def metric_cell(row: Row, metric: str, pm: str = "±") -> str:
    """``45.3 ± 1.2 (+2.1)``; no bracket for Retrain itself or when no gap is known."""
    stat = row.metrics.get(metric)
    if stat is None:
        return DASH
    text = pm_pct(stat, pm)
    gap = row.gaps.get(metric)
    if gap is not None and row.kind != "retrain":
        text += f" ({signed_pct(gap.mean)})"
    return text + (f" {FLAG}" if metric in row.flags else "")


def avg_gap_cell(row: Row, pm: str = "±") -> str:
    if row.avg_gap is None:
        return DASH
    return pm_pct(row.avg_gap, pm) + (f" {FLAG}" if AVG_GAP in row.flags else "")


def rte_cell(row: Row, pm: str = "±") -> str:
    if row.rte is None:
        return DASH
    return pm_seconds(row.rte, pm) + (" (cache load)" if row.rte_cached else "")


def row_label(row: Row) -> str:
    note = row.status_note()
    name = row.name + (" !" if row.no_unlearning else "")
    return f"{name} — {note}" if note else name


def setting_header(summary: SettingSummary) -> str:
    key = summary.key
    seeds = ", ".join(str(s) for s in summary.seeds)
    n = len(summary.seeds)
    return (
        f"Dataset {key.dataset}, model {key.model}, scenario {key.scenario} ({key.forget}), "
        f"{n} seed{'s' if n != 1 else ''} ({seeds})"
    )


def all_metric_info(summaries: Sequence[SettingSummary]) -> dict[str, dict]:
    """The table columns' ``metric_info`` over all settings, in column order."""
    info: dict[str, dict] = {}
    for summary in summaries:
        for name in summary.metric_names:
            info.setdefault(name, summary.metric_info.get(name, {}))
    return {name: info[name] for name in order_metrics(info, info)}


# --------------------------------------------------------------------------- notes under a table


def flag_notes(summary: SettingSummary) -> list[str]:
    """One line per flagged metric: what the mark means and which rows carry it in how many seeds."""
    notes = []
    for key, (metric, threshold) in diagnostics(summary.metric_info).items():
        rows = [
            f"{row.name} {k}/{n} seeds"
            for row in summary.rows
            for m, (k, n) in row.flags.items()
            if m == metric
        ]
        if rows:
            meaning = summary.metric_info[key].get("meaning") or summary.metric_info[key].get(
                "definition", ""
            )
            notes.append(
                f"{FLAG} {metric}: {key} > {percent_text(threshold)} in {', '.join(rows)}: {meaning}."
            )
    inherited = [row.name for row in summary.rows if AVG_GAP in row.flags]
    if inherited:
        notes.append(
            f"{FLAG} Avg Gap of {', '.join(inherited)}: averages a component marked {FLAG} in that row or "
            "in Retrain (the gap is taken against Retrain), so it carries the same caveat."
        )
    return notes


def unlearning_notes(summary: SettingSummary) -> list[str]:
    """A line per row that did not unlearn (marked !), and per row that had repeated runs of a seed."""
    notes = [
        f"! {row.name} did not unlearn: {'; '.join(row.no_unlearning)}."
        for row in summary.rows
        if row.no_unlearning
    ]
    notes += [
        f"{row.name}: {row.repeated} repeated run(s) of a seed left out (the newest run of each seed is used)."
        for row in summary.rows
        if row.repeated
    ]
    return notes


def left_out_notes(summary: SettingSummary) -> list[str]:
    """``ga, seed 2: diverged — loss became NaN`` for every run left out of the means."""
    return [
        f"{run.method}, seed {run.seed}: {run.status}" + (f" — {run.reason}" if run.reason else "")
        for run in summary.left_out
    ]
