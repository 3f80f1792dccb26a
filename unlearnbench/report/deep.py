"""Which methods look good on the outputs but not on the representations: one generated paragraph per setting.

A method *looks good on outputs* when its forget, retain and test accuracy are each within `output_points`
of Retrain's (mean over seeds of the per-seed gap). It is *not good on representations* when one of the
eval=deep metrics (linear-probe recovery, CKA position on D_f, relearning attack) is more than `deep_points`
above Retrain's: its features still hold the forgotten data (probe, relearning) or sit nearer the original's
than Retrain's (CKA). The numbers quoted are the setting's means over seeds, in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearnbench.report.aggregate import Row, SettingSummary

OUTPUT_METRICS = ("forget_acc", "retain_acc", "test_acc")
DEEP_METRICS = {  # name -> how the paragraph calls it
    "probe_forget_acc": "linear-probe accuracy on D_f",
    "cka_position_forget": "CKA position on D_f (0 = Retrain's features, 100 = the original's)",
    "relearn_forget_acc": "forget accuracy after the relearning attack",
}


def _mean(row: Row | None, metric: str) -> float | None:
    stat = row.metrics.get(metric) if row is not None else None
    return None if stat is None else stat.mean


def _gap(row: Row, metric: str) -> float | None:
    stat = row.gaps.get(metric)
    return None if stat is None else stat.mean


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def good_on_outputs(row: Row, points: float) -> bool:
    gaps = [_gap(row, m) for m in OUTPUT_METRICS]
    return all(g is not None and abs(g) <= points / 100 for g in gaps)


def deep_misses(row: Row, points: float) -> list[str]:
    """The deep metrics on which `row` is more than `points` above Retrain (the direction of remembering)."""
    return [m for m in DEEP_METRICS if (g := _gap(row, m)) is not None and g > points / 100]


def _quote(row: Row, metric: str, retrain: Row | None, original: Row | None) -> str:
    return (
        f"{DEEP_METRICS[metric]} {_pct(_mean(row, metric))} % (Retrain {_pct(_mean(retrain, metric))}, "
        f"original {_pct(_mean(original, metric))})"
    )


def surface_paragraph(summary: SettingSummary, output_points: float = 5.0, deep_points: float = 10.0) -> str:
    """One paragraph for one setting (see the module docstring)."""
    title = f"**{summary.key.scenario} ({summary.key.forget}).**"
    if not any(m in summary.metric_names for m in DEEP_METRICS):
        return f"{title} No representation metrics in these runs (they come with `eval=deep`)."
    by_kind = {row.kind: row for row in summary.rows if row.kind != "method"}
    retrain, original = by_kind.get("retrain"), by_kind.get("original")
    methods = [row for row in summary.rows if row.kind == "method" and row.metrics]
    good = [row for row in methods if good_on_outputs(row, output_points)]
    skin_deep = [(row, deep_misses(row, deep_points)) for row in good]
    skin_deep = [(row, misses) for row, misses in skin_deep if misses]
    sound = [row.name for row in good if not deep_misses(row, deep_points)]
    text = [
        title,
        f"{len(good)} of {len(methods)} methods look good on outputs (forget, retain and test accuracy within "
        f"{output_points:g} points of Retrain's){': ' + ', '.join(r.name for r in good) if good else ''}.",
    ]
    if skin_deep:
        text.append(
            f"Not on representations (a deep metric more than {deep_points:g} points above Retrain's): "
            + "; ".join(
                f"{row.name} (forget accuracy {_pct(_mean(row, 'forget_acc'))} %, Retrain "
                f"{_pct(_mean(retrain, 'forget_acc'))}): "
                + ", ".join(_quote(row, m, retrain, original) for m in misses)
                for row, misses in skin_deep
            )
            + "."
        )
    elif good:
        text.append(
            f"Each of them is also within {deep_points:g} points of Retrain on the representation metrics."
        )
    if skin_deep and sound:
        text.append(f"Good on both: {', '.join(sound)}.")
    return " ".join(text)


def rule(output_points: float = 5.0, deep_points: float = 10.0) -> str:
    """The paragraphs' rule, in words, for the document."""
    return (
        f"A method looks good on outputs when its forget, retain and test accuracy are each within {output_points:g} "
        "points of Retrain's (the mean over seeds of the per-seed gap); it is not good on representations when a "
        f"representation metric of eval=deep is more than {deep_points:g} points above Retrain's: the linear probe "
        "or the relearning attack recovers more of D_f (the features still hold it), or its features on D_f sit "
        "nearer the original's than Retrain's (CKA position). Numbers are means over seeds, in percent."
    )


def surface_section(
    summaries: Sequence[SettingSummary], output_points: float = 5.0, deep_points: float = 10.0
) -> list[str]:
    """Markdown lines: the rule, then `surface_paragraph` for each setting."""
    if not summaries:
        return ["(no finished runs)", ""]
    out = [rule(output_points, deep_points), ""]
    for summary in summaries:
        out += [surface_paragraph(summary, output_points, deep_points), ""]
    return out
