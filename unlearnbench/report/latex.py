"""``report.tex``: a booktabs table per setting."""

from __future__ import annotations

from collections.abc import Sequence

from unlearnbench.report.aggregate import SettingSummary
from unlearnbench.report.cells import (
    DASH,
    FLAG,
    avg_gap_cell,
    flag_notes,
    left_out_notes,
    metric_cell,
    row_label,
    rte_cell,
)
from unlearnbench.report.runs import sanitize_filename

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
    "—": "---",
    "±": r"$\pm$",
    ">": r"$>$",
    "<": r"$<$",
    FLAG: r"\textsuperscript{\dag}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def latex_table(summary: SettingSummary) -> str:
    """A booktabs table for one setting; references above a mid rule, methods below."""
    cols = [latex_escape(m) for m in summary.metric_names]
    if summary.has_gaps:
        cols.append("Avg Gap")
    if summary.has_rte:
        cols.append("RTE (s)")
    caption = latex_escape(
        f"{summary.key.label()}, {len(summary.seeds)} seed(s). Mean ± std over seeds (%); "
        f"gap to Retrain in parentheses (percentage points)."
    )
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{sanitize_filename(summary.key.slug())}}}",
        r"\begin{tabular}{l" + "r" * len(cols) + "}",
        r"\toprule",
        "Method & " + " & ".join(cols) + r" \\",
        r"\midrule",
    ]
    pm = r"$\pm$"
    previous_kind = None
    for row in summary.rows:
        if previous_kind in ("retrain", "original") and row.kind == "method":
            lines.append(r"\midrule")
        previous_kind = row.kind
        cells = [latex_escape(row_label(row))]
        cells += [metric_cell(row, m, pm).replace(DASH, "--") for m in summary.metric_names]
        if summary.has_gaps:
            cells.append(avg_gap_cell(row, pm).replace(DASH, "--"))
        if summary.has_rte:
            cells.append(rte_cell(row, pm).replace(DASH, "--"))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = flag_notes(summary) + [f"Left out: {n}." for n in left_out_notes(summary)]
    if notes:
        lines.append(r"\par\footnotesize " + r" \par ".join(latex_escape(n) for n in notes))
    lines.append(r"\end{table}")
    return "\n".join(lines)


def render_latex(summaries: Sequence[SettingSummary]) -> str:
    """All settings' tables; include the file in a document that loads ``booktabs``."""
    head = "% unlearnbench report: needs \\usepackage{booktabs}\n"
    return head + "\n\n".join(latex_table(s) for s in summaries) + "\n"
