"""The PNG figures of a setting: each row's gap to Retrain per metric, and forget vs test accuracy."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearnbench.report.aggregate import Row, SettingSummary
from unlearnbench.report.cells import FLAG, ideal_value, percent_text, row_label
from unlearnbench.report.columns import diagnostics
from unlearnbench.report.stats import Stat
from unlearnbench.report.verdicts import AVG_GAP

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
        panels.append(Panel(AVG_GAP, "Avg Gap (pp)\nlower is better; Retrain = 0", tuple(zero + avg)))
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
    ax.set_xlim(-0.1 * reach if panel.metric == AVG_GAP else -1.25 * reach, 1.25 * reach)
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
    if any(p.metric == AVG_GAP for p in panels) and summary.avg_gap_components:
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
        x, y = 100.0 * row.metrics["forget_acc"].mean, 100.0 * row.metrics["test_acc"].mean
        same = seen.setdefault((round(x, 1), round(y, 1)), row.name)
        _draw_point(ax, row, color, _point_style(row, methods), _point_label(row, same))
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


def _point_style(row: Row, methods: Sequence[Row]) -> tuple[str, float]:
    """(marker, size): a reference's own, else the method's place in the cycles of shapes and sizes."""
    if row.kind in _REFERENCE_MARKER:
        return _REFERENCE_MARKER[row.kind], 18.0 if row.kind == "retrain" else 14.0
    i = methods.index(row)
    return _METHOD_MARKERS[i % len(_METHOD_MARKERS)], _METHOD_SIZES[i % len(_METHOD_SIZES)]


def _point_label(row: Row, same: str) -> str:
    """The row's legend entry; a method drawn where an earlier row already is says which."""
    label = {"retrain": "Retrain (reference)", "original": "Original (before unlearning)"}.get(row.kind)
    return label or row_label(row) + (f" (same point as {same})" if same != row.name else "")


def _draw_point(ax, row: Row, color, style: tuple[str, float], label: str) -> None:
    """The row's hollow marker at its means with std error bars; Retrain's also draws dotted guides."""
    fx, tx = row.metrics["forget_acc"], row.metrics["test_acc"]
    x, y = 100.0 * fx.mean, 100.0 * tx.mean
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
    marker, size = style
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


PLOTS = (("gap_to_retrain", gap_figure), ("forget_vs_test", forget_vs_test_figure))
