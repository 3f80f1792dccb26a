"""Render aggregated settings as markdown, CSV, LaTeX (booktabs) and PNG plots, and write the report's files.

The text renderers are pure (summaries in, string out: :mod:`.markdown_report`, :mod:`.csv_export`,
:mod:`.latex`), the figures are in :mod:`.figures`; :func:`write_report` writes the files. Metric values are
fractions in the results and percentages in the tables and plots; the CSV keeps fractions so that it
round-trips with ``results.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unlearnbench.report.aggregate import SettingSummary
from unlearnbench.report.csv_export import render_csv
from unlearnbench.report.figures import PLOTS
from unlearnbench.report.latex import render_latex
from unlearnbench.report.markdown_report import render_markdown  # scripts/ also import it from here
from unlearnbench.report.runs import sanitize_filename


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
