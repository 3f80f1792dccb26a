"""Render aggregated settings as markdown, CSV, LaTeX (booktabs) and PNG plots.

All text renderers are pure (summaries in, string out); :func:`write_report` writes the files.
Metric values are fractions in the results and percentages in the tables and plots; the CSV keeps
fractions so that it round-trips with ``results.json``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearnbench.report.aggregate import (
    AVG_GAP_METRICS,
    Row,
    SettingSummary,
    Stat,
    order_metrics,
    sanitize_filename,
)

DASH = "–"  # shown for "not available"

ROWS_LEGEND = (
    "Rows: Retrain (retrained-from-scratch reference) and Original (before unlearning) come from the "
    "runs' references, one value per seed; the other rows are methods, named as in the runs "
    "(a method run called 'retrain' or 'none' is its own row)."
)
CELL_LEGEND = (
    "Cells: mean ± std over seeds, in percent; the bracket is the mean gap to Retrain "
    "(row minus Retrain, per seed, in percentage points). '± –' means a single seed (no std); "
    "'–' means not available."
)
AVG_GAP_LEGEND = (
    "Avg Gap: mean of |gap| over " + ", ".join(AVG_GAP_METRICS) + " (those present), "
    "computed per run and then averaged over seeds; percentage points, lower is better."
)
RTE_LEGEND = (
    "RTE (s): wall-clock seconds of the unlearning stage alone (time_s.unlearn); for Retrain, "
    "the retraining time (time_s.retrain, only a load time when the model came from the cache)."
)


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
    return text


def row_label(row: Row) -> str:
    note = row.status_note()
    return f"{row.name} — {note}" if note else row.name


def setting_header(summary: SettingSummary) -> str:
    key = summary.key
    seeds = ", ".join(str(s) for s in summary.seeds)
    n = len(summary.seeds)
    return (
        f"Dataset {key.dataset}, model {key.model}, scenario {key.scenario} ({key.forget}), "
        f"{n} seed{'s' if n != 1 else ''} ({seeds})"
    )


def describe_metric(name: str, info: dict) -> str:
    """``forget_acc: closer to retrain (ideal: retrain value)`` from ``metric_info``."""
    parts = []
    if info.get("direction") is not None:
        parts.append(str(info["direction"]))
    if info.get("ideal") is not None:
        parts.append(f"ideal: {info['ideal']}")
    if not parts:
        return f"{name}: no direction recorded"
    return f"{name}: " + (f"{parts[0]} ({parts[1]})" if len(parts) == 2 else parts[0])


def _all_metric_info(summaries: Sequence[SettingSummary]) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for summary in summaries:
        for name in summary.metric_names:
            info.setdefault(name, summary.metric_info.get(name, {}))
    return info


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
            cells.append(pm_pct(row.avg_gap) if row.avg_gap else DASH)
        if summary.has_rte:
            cells.append(pm_seconds(row.rte) if row.rte else DASH)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(summaries: Sequence[SettingSummary]) -> str:
    """The full ``report.md``: one section per setting, then the legend."""
    n_runs = sum(row.n_seeds for s in summaries for row in s.rows if row.kind == "method")
    out = [
        "# Unlearning benchmark report",
        "",
        f"{n_runs} run{'s' if n_runs != 1 else ''} in {len(summaries)} "
        f"setting{'s' if len(summaries) != 1 else ''}.",
    ]
    for summary in summaries:
        out += ["", f"## {summary.key.label()}", "", setting_header(summary) + ".", ""]
        out.append(markdown_table(summary))
        notes = [
            f"- {row.name}: {row.status_note()}" + (f" — {'; '.join(row.reasons)}" if row.reasons else "")
            for row in summary.rows
            if row.n_diverged
        ]
        if notes:
            out += ["", "Excluded runs (their metrics are left out of the means):", *notes]
    out += ["", "## Legend", "", f"- {ROWS_LEGEND}", f"- {CELL_LEGEND}"]
    out += [f"- {describe_metric(name, info)}" for name, info in _all_metric_info(summaries).items()]
    out += [f"- {AVG_GAP_LEGEND}", f"- {RTE_LEGEND}", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- CSV


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_csv(summaries: Sequence[SettingSummary]) -> str:
    """One row per setting x row (Retrain, Original, methods); metric values as fractions."""
    metrics = order_metrics(m for s in summaries for m in s.metric_names)
    header = ["dataset", "model", "scenario", "forget", "method", "kind", "n_seeds", "n_diverged"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_gap_mean", f"{m}_gap_std"]
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
            for stat in (row.avg_gap, row.rte):
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
            cells.append(pm_pct(row.avg_gap, pm).replace(DASH, "--") if row.avg_gap else "--")
        if summary.has_rte:
            cells.append(pm_seconds(row.rte, pm).replace(DASH, "--") if row.rte else "--")
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def render_latex(summaries: Sequence[SettingSummary]) -> str:
    """All settings' tables; include the file in a document that loads ``booktabs``."""
    head = "% unlearnbench report: needs \\usepackage{booktabs}\n"
    return head + "\n\n".join(latex_table(s) for s in summaries) + "\n"


# --------------------------------------------------------------------------- plots

_REFERENCE_STYLE = {
    "retrain": {"color": "black", "hatch": "//", "marker": "*"},
    "original": {"color": "0.65", "hatch": "", "marker": "s"},
}


def _row_colors(rows: Sequence[Row]) -> list:
    """Fixed colours for the references, the tab10 cycle for methods."""
    from matplotlib import colormaps

    cycle = colormaps["tab10"].colors
    colors, i = [], 0
    for row in rows:
        if row.kind in _REFERENCE_STYLE:
            colors.append(_REFERENCE_STYLE[row.kind]["color"])
        else:
            colors.append(cycle[i % len(cycle)])
            i += 1
    return colors


def plot_metrics(summary: SettingSummary, path: Path) -> Path | None:
    """Grouped bars: one group per metric, one bar per row (Retrain first), std as error bars."""
    rows = [r for r in summary.rows if r.metrics]
    metrics = summary.metric_names
    if not rows or not metrics:
        return None
    fig = Figure(figsize=(max(6.0, 1.1 * len(metrics) * max(1, len(rows)) / 3 + 3), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / len(rows)
    for i, (row, color) in enumerate(zip(rows, _row_colors(rows))):
        xs, means, stds = [], [], []
        for j, m in enumerate(metrics):
            stat = row.metrics.get(m)
            if stat is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                means.append(100.0 * stat.mean)
                stds.append(100.0 * stat.std)
        hatch = _REFERENCE_STYLE.get(row.kind, {}).get("hatch", "")
        ax.bar(xs, means, width, yerr=stds, capsize=2, color=color, hatch=hatch,
               edgecolor="white" if hatch else None, label=row_label(row))
    ax.set_xticks(range(len(metrics)), metrics, rotation=20, ha="right")
    ax.set_ylabel("%  (mean ± std over seeds)")
    ax.set_ylim(0, 105)
    ax.set_title(summary.key.label())
    ax.legend(fontsize="small", ncols=min(4, len(rows)), loc="upper center",
              bbox_to_anchor=(0.5, -0.22), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_forget_vs_test(summary: SettingSummary, path: Path) -> Path | None:
    """Forget vs test accuracy, one point per row with std error bars; Retrain is a star."""
    rows = [r for r in summary.rows if "forget_acc" in r.metrics and "test_acc" in r.metrics]
    if not rows:
        return None
    fig = Figure(figsize=(6.0, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for row, color in zip(rows, _row_colors(rows)):
        fx, tx = row.metrics["forget_acc"], row.metrics["test_acc"]
        x, y = 100.0 * fx.mean, 100.0 * tx.mean
        marker = _REFERENCE_STYLE.get(row.kind, {}).get("marker", "o")
        size = 14 if row.kind == "retrain" else 7
        ax.errorbar(x, y, xerr=100.0 * fx.std, yerr=100.0 * tx.std, fmt=marker, color=color,
                    markersize=size, capsize=3, label=row_label(row))
        ax.annotate(row.name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize="small")
        if row.kind == "retrain":
            # Guides: the closer a method sits to both lines, the closer it is to the oracle.
            ax.axvline(x, color=color, linestyle=":", linewidth=0.8)
            ax.axhline(y, color=color, linestyle=":", linewidth=0.8)
    ax.set_xlabel("forget_acc (%)")
    ax.set_ylabel("test_acc (%)")
    ax.set_title(summary.key.label(), fontsize="medium")
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


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
        for prefix, plot in (("metrics", plot_metrics), ("forget_vs_test", plot_forget_vs_test)):
            path = plot(summary, out_dir / f"{prefix}_{slug}.png")
            if path is not None:
                written.append(path)
    return written
