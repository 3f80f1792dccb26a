"""The one Markdown table writer: reports, paper tables, benchmarks and the GPU check all print through it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]], align: str | Sequence[str] = "") -> str:
    """A Markdown table. `align` is one letter per column, "l" (default) or "r" (numbers), e.g. "lrr";
    cells are `str()`-ed, with any `|` escaped so a label cannot break the row."""
    marks = ["---" if a == "l" else "---:" for a in (list(align) + ["l"] * len(header))[: len(header)]]
    lines = [_row(header), "|" + "|".join(marks) + "|"]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
