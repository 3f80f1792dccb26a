"""Script-written sections of a markdown doc (docs/benchmarks.md, ...): each between two comment markers,
rewritten in place by the script that measures it, the rest of the doc kept."""

from __future__ import annotations

from pathlib import Path


def doc_markers(name: str) -> tuple[str, str]:
    """The comments that enclose a script-written section of a markdown doc."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(doc: Path, name: str, body: str) -> None:
    """Write `body` as the doc's section `name` (between its markers), keeping the rest; append if absent."""
    start, end = doc_markers(name)
    section = f"{start}\n{body}\n{end}"
    text = doc.read_text() if doc.exists() else ""
    if start in text and end in text.split(start, 1)[1]:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
