"""``report.md``: one section per setting (its table and the notes under it), then the legend."""

from __future__ import annotations

from collections.abc import Sequence

from unlearnbench.report.aggregate import RETRAIN_METHOD, SettingSummary
from unlearnbench.report.cells import (
    FLAG,
    all_metric_info,
    avg_gap_cell,
    describe_metric,
    flag_notes,
    left_out_notes,
    metric_cell,
    row_label,
    rte_cell,
    setting_header,
    unlearning_notes,
)
from unlearnbench.report.columns import diagnostics
from unlearnbench.report.tables import markdown

ROWS_LEGEND = (
    "Rows: Retrain (retrained-from-scratch reference) and Original (before unlearning) come from the "
    f"runs' references, one value per seed; runs of the '{RETRAIN_METHOD}' method train the same model "
    "(same seed, same cache key) and are merged into the Retrain row. The other rows are methods, named "
    "as in the runs ('none' is the original model run through the method pipeline, a sanity row)."
)
CELL_LEGEND = (
    "Cells: mean ± std over seeds, in percent; the bracket is the mean gap to Retrain "
    "(row minus Retrain, per seed, in percentage points); Retrain, the reference, has no bracket and no "
    "Avg Gap (0 by definition). '± –' means a single seed (no std); '–' means not available."
)
RTE_LEGEND = (
    "RTE (s): wall-clock seconds of the unlearning stage alone (time_s.unlearn); for Retrain, its training "
    "time, recorded with the cached model (so a run that loaded it from the cache still reports what it "
    "cost); 'cache load' only for models cached before training times were recorded."
)
NO_UNLEARNING_LEGEND = (
    "! after a method: it did not unlearn: its forget accuracy is within noise of its Original row's "
    "(two standard errors of the seed means' difference, at least one point), or its Avg Gap is worse than "
    "doing nothing's (the Original row's); the note under the table gives the numbers. Original rows: one "
    "per original model (a method that trains its own original, like mnemonic, gets its own row)."
)


def markdown_table(summary: SettingSummary) -> str:
    """One setting's table: Retrain, Original, methods; Avg Gap and RTE columns when available."""
    header = ["Method", *summary.metric_names]
    if summary.has_gaps:
        header.append("Avg Gap")
    if summary.has_rte:
        header.append("RTE (s)")
    rows = []
    for row in summary.rows:
        cells = [row_label(row)]  # markdown() escapes a '|' in a name
        cells += [metric_cell(row, m) for m in summary.metric_names]
        if summary.has_gaps:
            cells.append(avg_gap_cell(row))
        if summary.has_rte:
            cells.append(rte_cell(row))
        rows.append(cells)
    return markdown(header, rows, align="l" + "r" * (len(header) - 1))


def avg_gap_legend(summaries: Sequence[SettingSummary]) -> str:
    """Avg Gap's definition with the components the runs were configured with."""
    variants = {", ".join(s.avg_gap_components) for s in summaries if s.avg_gap_components}
    over = (
        " or ".join(sorted(variants)) if variants else "the components recorded in the runs (none recorded)"
    )
    return (
        f"Avg Gap: mean of |gap to Retrain| over {over} (metric_info.avg_gap.components), as stored by each "
        "run (metrics.avg_gap) and averaged over seeds; for Original computed per seed from the same "
        "components; percentage points, lower is better."
    )


def render_markdown(summaries: Sequence[SettingSummary]) -> str:
    """The full ``report.md``: one section per setting, then the legend."""
    n_runs = sum(s.n_runs for s in summaries)
    out = [
        "# Unlearning benchmark report",
        "",
        f"{n_runs} run{'s' if n_runs != 1 else ''} in {len(summaries)} "
        f"setting{'s' if len(summaries) != 1 else ''}.",
    ]
    for summary in summaries:
        out += ["", f"## {summary.key.label()}", "", setting_header(summary) + ".", ""]
        out.append(markdown_table(summary))
        notes = flag_notes(summary) + unlearning_notes(summary)
        if notes:
            out += ["", *(f"- {n}" for n in notes)]
        left_out = left_out_notes(summary)
        if left_out:
            out += [
                "",
                "Runs left out of the means (diverged or failed jobs):",
                *(f"- {n}" for n in left_out),
            ]
    out += ["", "## Legend", "", f"- {ROWS_LEGEND}", f"- {CELL_LEGEND}"]
    out += [f"- {describe_metric(name, info)}" for name, info in all_metric_info(summaries).items()]
    out += [f"- {avg_gap_legend(summaries)}", f"- {RTE_LEGEND}", f"- {NO_UNLEARNING_LEGEND}"]
    diag = {k: v for s in summaries for k, v in diagnostics(s.metric_info).items()}
    for key, (metric, _) in sorted(diag.items()):
        info = next(s.metric_info[key] for s in summaries if key in s.metric_info)
        out.append(
            f"- {FLAG} on a {metric} cell: {key} ({info.get('definition', 'a diagnostic')}) is above its "
            "threshold in at least one seed; the note under the table says where and what it means."
        )
    return "\n".join(out + [""])
