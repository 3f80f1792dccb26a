"""Render aggregated settings as markdown, CSV, LaTeX (booktabs) and PNG plots.

All text renderers are pure (summaries in, string out); :func:`write_report` writes the files.
Metric values are fractions in the results and percentages in the tables and plots; the CSV keeps
fractions so that it round-trips with ``results.json``.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearnbench.report.aggregate import (
    AVG_GAP,
    RETRAIN_METHOD,
    Row,
    SettingSummary,
    Stat,
    diagnostics,
    is_number,
    order_metrics,
    sanitize_filename,
)

DASH = "–"  # shown for "not available"
FLAG = "†"  # marks a cell whose metric a diagnostic flags as unreliable

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


def setting_header(summary: SettingSummary) -> str:
    key = summary.key
    seeds = ", ".join(str(s) for s in summary.seeds)
    n = len(summary.seeds)
    return (
        f"Dataset {key.dataset}, model {key.model}, scenario {key.scenario} ({key.forget}), "
        f"{n} seed{'s' if n != 1 else ''} ({seeds})"
    )


def _all_metric_info(summaries: Sequence[SettingSummary]) -> dict[str, dict]:
    """The table columns' ``metric_info`` over all settings, in column order."""
    info: dict[str, dict] = {}
    for summary in summaries:
        for name in summary.metric_names:
            info.setdefault(name, summary.metric_info.get(name, {}))
    return {name: info[name] for name in order_metrics(info, info)}


# --------------------------------------------------------------------------- markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(summary: SettingSummary) -> str:
    """One setting's table: Retrain, Original, methods; Avg Gap and RTE columns when available."""
    header = ["Method", *summary.metric_names]
    align = ["---"] + ["---:"] * len(summary.metric_names)
    if summary.has_gaps:
        header.append("Avg Gap")
        align.append("---:")
    if summary.has_rte:
        header.append("RTE (s)")
        align.append("---:")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in summary.rows:
        cells = [_md_escape(row_label(row))]
        cells += [metric_cell(row, m) for m in summary.metric_names]
        if summary.has_gaps:
            cells.append(avg_gap_cell(row))
        if summary.has_rte:
            cells.append(rte_cell(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def left_out_notes(summary: SettingSummary) -> list[str]:
    """``ga, seed 2: diverged — loss became NaN`` for every run left out of the means."""
    return [
        f"{run.method}, seed {run.seed}: {run.status}" + (f" — {run.reason}" if run.reason else "")
        for run in summary.left_out
    ]


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
    out += [f"- {describe_metric(name, info)}" for name, info in _all_metric_info(summaries).items()]
    out += [f"- {avg_gap_legend(summaries)}", f"- {RTE_LEGEND}", f"- {NO_UNLEARNING_LEGEND}"]
    diag = {k: v for s in summaries for k, v in diagnostics(s.metric_info).items()}
    for key, (metric, _) in sorted(diag.items()):
        info = next(s.metric_info[key] for s in summaries if key in s.metric_info)
        out.append(
            f"- {FLAG} on a {metric} cell: {key} ({info.get('definition', 'a diagnostic')}) is above its "
            "threshold in at least one seed; the note under the table says where and what it means."
        )
    return "\n".join(out + [""])


# --------------------------------------------------------------------------- CSV


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_csv(summaries: Sequence[SettingSummary]) -> str:
    """One row per setting x row (Retrain, Original, methods); metric values as fractions."""
    info = _all_metric_info(summaries)
    metrics = order_metrics((m for s in summaries for m in s.metric_names), info)
    diag = sorted({k for s in summaries for k in diagnostics(s.metric_info)})
    header = ["dataset", "model", "scenario", "forget", "method", "kind", "n_seeds", "n_diverged"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_gap_mean", f"{m}_gap_std"]
    header += [f"{d}_{part}" for d in diag for part in ("mean", "std")]
    header += ["avg_gap_mean", "avg_gap_std", "rte_s_mean", "rte_s_std"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for summary in summaries:
        key = summary.key
        for row in summary.rows:
            values = [key.dataset, key.model, key.scenario, key.forget, row.name, row.kind]
            values += [row.n_seeds, row.n_diverged]
            for m in metrics:
                stat, gap = row.metrics.get(m), row.gaps.get(m)
                values += [
                    _num(stat and stat.mean),
                    _num(stat and stat.std),
                    _num(gap and gap.mean),
                    _num(gap and gap.std),
                ]
            for stat in [row.metrics.get(d) for d in diag] + [row.avg_gap, row.rte]:
                values += [_num(stat and stat.mean), _num(stat and stat.std)]
            writer.writerow(values)
    return buf.getvalue()


# --------------------------------------------------------------------------- LaTeX

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


# --------------------------------------------------------------------------- plots

_REFERENCE_COLOR = {"retrain": "black", "original": "0.55"}
_REFERENCE_MARKER = {"retrain": "*", "original": "s"}
_METHOD_MARKERS = ("o", "D", "^", "v", "<", ">", "p", "h", "P", "X")
_METHOD_SIZES = (12.0, 9.0, 6.5)  # methods at the same spot nest instead of hiding each other
_BAR_NOTE = "Bars: mean over seeds; error bars: std over seeds (of the per-seed values shown)."


def _row_colors(rows: Sequence[Row]) -> list:
    """Fixed colours for the references, the tab10 cycle for methods."""
    from matplotlib import colormaps

    cycle = [c for i, c in enumerate(colormaps["tab10"].colors) if i != 7]  # tab10's grey is the Original's
    methods = [r for r in rows if r.kind == "method"]
    return [_REFERENCE_COLOR.get(r.kind) or cycle[methods.index(r) % len(cycle)] for r in rows]


@dataclass(frozen=True)
class Bar:
    """One row's value in a panel, in percentage points; ``std`` is ``None`` for a single seed.

    ``zero`` marks the reference the panel is measured against (Retrain): drawn as a point at 0.
    """

    row: str
    kind: str
    mean: float
    std: float | None
    flagged: bool = False
    zero: bool = False


@dataclass(frozen=True)
class Panel:
    """One metric of the gap figure: a title with its unit and direction, and the rows' bars."""

    metric: str
    title: str
    bars: tuple[Bar, ...]


def _bar(row: Row, stat: Stat, offset: float = 0.0, flagged: bool = False) -> Bar:
    return Bar(
        row_label(row),
        row.kind,
        100.0 * (stat.mean - offset),
        100.0 * stat.std if stat.n > 1 else None,
        flagged,
    )


def gap_panels(summary: SettingSummary) -> list[Panel]:
    """What the gap figure shows, one panel per metric (pure; values in percentage points).

    Avg Gap first (lower is better). A metric whose ideal is Retrain shows each row's mean gap to
    Retrain (Retrain itself is the zero line, drawn as a point at 0); a metric with a fixed ideal
    (mia_loss: 50 %) shows every row's distance to that ideal, Retrain included.
    """
    retrain = [r for r in summary.rows if r.kind == "retrain"]
    panels = []
    avg = [
        _bar(r, r.avg_gap, 0.0, AVG_GAP in r.flags)
        for r in summary.rows
        if r.avg_gap is not None and r.kind != "retrain"
    ]
    if avg:
        zero = [Bar(row_label(r), r.kind, 0.0, None, zero=True) for r in retrain]
        panels.append(Panel("avg_gap", "Avg Gap (pp)\nlower is better; Retrain = 0", tuple(zero + avg)))
    for metric in summary.metric_names:
        info = summary.metric_info.get(metric, {})
        ideal = ideal_value(info)
        if "components" in info:  # another mean |gap| to Retrain (tune_gap): drawn like Avg Gap
            zero = [Bar(row_label(r), r.kind, 0.0, None, zero=True) for r in retrain]
            bars = zero + [
                _bar(r, r.metrics[metric])
                for r in summary.rows
                if metric in r.metrics and r.kind != "retrain"
            ]
            title = f"{metric} (pp)\nlower is better; Retrain = 0"
        elif ideal is not None:
            bars = [
                _bar(r, r.metrics[metric], ideal, metric in r.flags)
                for r in summary.rows
                if metric in r.metrics
            ]
            title = f"{metric}: value − {percent_text(ideal)} (pp)\nbest: 0 (= {percent_text(ideal)})"
        else:
            gaps = [
                _bar(r, r.gaps[metric], 0.0, metric in r.flags)
                for r in summary.rows
                if metric in r.gaps and r.kind != "retrain"
            ]
            zero = [Bar(row_label(r), r.kind, 0.0, None, metric in r.flags, zero=True) for r in retrain]
            bars = zero + gaps if gaps else []
            title = f"{metric}: gap to Retrain (pp)\nbest: 0 (= Retrain)"
        if bars:
            panels.append(Panel(metric, title, tuple(bars)))
    return panels


def _draw_panel(ax, panel: Panel, ypos: dict[str, int], colors: dict[str, object]) -> None:
    reach = max([abs(b.mean) + (b.std or 0.0) for b in panel.bars] + [0.5])
    for bar in panel.bars:
        y = ypos[bar.row]
        if bar.zero:
            ax.plot(0.0, y, marker="D", color=colors[bar.row], markersize=6, zorder=3)
        else:
            ax.barh(
                y,
                bar.mean,
                height=0.6,
                color=colors[bar.row],
                xerr=bar.std,
                error_kw={"elinewidth": 1.0, "capsize": 2, "ecolor": "0.2"},
                zorder=2,
            )
        if bar.flagged:  # just past the bar's (or error bar's) end, on its side of 0
            side = -1.0 if bar.mean < 0 else 1.0
            x = bar.mean + side * ((bar.std or 0.0) + 0.05 * reach)
            ax.text(x, y, FLAG, va="center", ha="left" if side > 0 else "right", fontsize="small")
    ax.axvline(0.0, color="black", linewidth=0.9, zorder=1)
    # Symmetric around 0 (the sign says which side of the reference); Avg Gap is never negative.
    ax.set_xlim(-0.1 * reach if panel.metric == "avg_gap" else -1.25 * reach, 1.25 * reach)
    ax.set_title(panel.title, fontsize="small")
    ax.tick_params(axis="x", labelsize="small")
    ax.grid(axis="x", color="0.9", zorder=0)


def gap_figure(summary: SettingSummary) -> Figure | None:
    """The main figure: one panel per metric of :func:`gap_panels`, rows on a shared y axis."""
    panels = gap_panels(summary)
    if not panels:
        return None
    shown = {bar.row for panel in panels for bar in panel.bars}
    rows = [r for r in summary.rows if row_label(r) in shown]
    ypos = {row_label(r): i for i, r in enumerate(rows)}
    colors = dict(zip((row_label(r) for r in rows), _row_colors(rows)))
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(1.6 + 3.3 * ncols, 1.6 + nrows * (1.0 + 0.32 * len(rows))))
    fig.set_layout_engine(
        "constrained", wspace=0.1
    )  # room between one panel's last x tick and the next's first
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        _draw_panel(ax, panel, ypos, colors)
    for ax in axes[len(panels) :]:
        fig.delaxes(ax)
    first = fig.axes[0]
    first.set_yticks(range(len(rows)), list(ypos))
    first.set_ylim(len(rows) - 0.5, -0.5)  # first row on top
    notes = [_BAR_NOTE]
    if any(p.metric == "avg_gap" for p in panels) and summary.avg_gap_components:
        notes.append(f"Avg Gap: mean |gap to Retrain| over {', '.join(summary.avg_gap_components)}.")
    for key, (metric, threshold) in diagnostics(summary.metric_info).items():
        if any(b.flagged for p in panels if p.metric in (metric, AVG_GAP) for b in p.bars):
            definition = summary.metric_info[key].get("definition", key)
            notes.append(
                f"{FLAG} {metric} unreliable: {key} > {percent_text(threshold)} ({definition}); "
                "Avg Gap inherits it. See the note under the report's table."
            )
    fig.suptitle(summary.key.label(), fontsize="medium")
    width = int(fig.get_figwidth() * 13)  # characters per line at the small font size
    fig.supxlabel("\n".join(textwrap.fill(note, width) for note in notes), fontsize="small")
    return fig


def forget_vs_test_figure(summary: SettingSummary) -> Figure | None:
    """Forget vs test accuracy, one marker per row with std error bars, names in a legend (no labels on points).

    Methods are hollow markers of distinct shapes, so two at the same spot both stay visible; the
    references (Retrain star, Original square) are hollow too and drawn on top of every method.
    """
    rows = [r for r in summary.rows if "forget_acc" in r.metrics and "test_acc" in r.metrics]
    if not rows:
        return None
    # The legend (one entry per row, beside the axes) sets the size: past 16 rows it takes two columns,
    # and the figure grows with it, so no entry is cut off.
    legend_cols = 1 if len(rows) <= 16 else 2
    legend_rows = -(-len(rows) // legend_cols)
    fig = Figure(
        figsize=(7.5 + 2.6 * (legend_cols - 1), max(5.0, 0.8 + 0.3 * legend_rows)), layout="constrained"
    )
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    methods = [r for r in rows if r.kind == "method"]
    seen: dict[tuple[float, float], str] = {}  # rounded position -> first row drawn there
    for row, color in zip(rows, _row_colors(rows)):
        fx, tx = row.metrics["forget_acc"], row.metrics["test_acc"]
        x, y = 100.0 * fx.mean, 100.0 * tx.mean
        same = seen.setdefault((round(x, 1), round(y, 1)), row.name)
        reference = row.kind in _REFERENCE_MARKER
        ax.errorbar(
            x,
            y,
            xerr=100.0 * fx.std,
            yerr=100.0 * tx.std,
            fmt="none",
            ecolor=color,
            alpha=0.5,
            elinewidth=1.0,
            capsize=2,
            zorder=2,
        )
        if reference:
            marker, size = _REFERENCE_MARKER[row.kind], 18.0 if row.kind == "retrain" else 14.0
        else:
            i = methods.index(row)
            marker, size = _METHOD_MARKERS[i % len(_METHOD_MARKERS)], _METHOD_SIZES[i % len(_METHOD_SIZES)]
        label = {"retrain": "Retrain (reference)", "original": "Original (before unlearning)"}.get(row.kind)
        label = label or row_label(row) + (f" (same point as {same})" if same != row.name else "")
        ax.plot(
            x,
            y,
            linestyle="none",
            marker=marker,
            markersize=size,
            markerfacecolor="none",
            markeredgecolor=color,
            markeredgewidth=2.0 if reference else 1.4,
            zorder=5 if reference else 3,
            label=label,
        )
        if row.kind == "retrain":
            # Guides: the closer a method sits to both lines, the closer it is to the oracle.
            ax.axvline(x, color=color, linestyle=":", linewidth=0.8, zorder=1)
            ax.axhline(y, color=color, linestyle=":", linewidth=0.8, zorder=1)
    ax.set_xlabel("forget_acc (%): closer to Retrain is better")
    ax.set_ylabel("test_acc (%): closer to Retrain is better")
    ax.set_title(f"{summary.key.label()}\nmean ± std over seeds", fontsize="medium")
    ax.margins(0.08)
    ax.legend(
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        ncols=legend_cols,
        markerscale=0.7,
    )
    return fig


PLOTS = (("gap_to_retrain", gap_figure), ("forget_vs_test", forget_vs_test_figure))


# --------------------------------------------------------------------------- files


def unique_slugs(summaries: Sequence[SettingSummary]) -> list[str]:
    """Sanitised setting slugs, suffixed ``-2``, ``-3`` ... if two settings sanitise alike."""
    seen: dict[str, int] = {}
    out = []
    for summary in summaries:
        slug = sanitize_filename(summary.key.slug())
        seen[slug] = seen.get(slug, 0) + 1
        out.append(slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")
    return out


def write_report(summaries: Sequence[SettingSummary], out_dir: Path) -> list[Path]:
    """Write report.md / .csv / .tex and the per-setting plots; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in (
        ("report.md", render_markdown(summaries)),
        ("report.csv", render_csv(summaries)),
        ("report.tex", render_latex(summaries)),
    ):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for summary, slug in zip(summaries, unique_slugs(summaries)):
        for prefix, plot in PLOTS:
            fig = plot(summary)
            if fig is not None:
                path = out_dir / f"{prefix}_{slug}.png"
                fig.savefig(path, dpi=120)
                written.append(path)
    return written
