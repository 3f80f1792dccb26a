"""``unlearn-report PATH...``: aggregate results.json files into markdown / CSV / LaTeX tables and plots.

Thin wrapper: argument parsing and printing here, the work in :mod:`.runs`, :mod:`.aggregate` and
:mod:`.render`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from unlearnbench.errors import UserError
from unlearnbench.report.aggregate import aggregate
from unlearnbench.report.cells import setting_header
from unlearnbench.report.markdown_report import markdown_table
from unlearnbench.report.render import write_report
from unlearnbench.report.runs import duplicate_warnings, find_result_files, load_runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn-report",
        description="Aggregate unlearnbench results.json files (searched recursively) into "
        "report.md, report.csv, report.tex and PNG plots.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="run or sweep directories (or results.json)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: the first PATH)")
    return parser


def default_out_dir(first: str) -> Path:
    """The first PATH, or its folder when it is a results file."""
    path = Path(first)
    return path.parent if path.is_file() else path


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def report(paths: Sequence[str], out: str | None = None, show=None) -> list[Path]:
    """Find, parse, aggregate, write; return the written paths. ``UserError`` when nothing to report.
    `show(text)`, when given, receives each setting's main table (the terminal's copy of report.md's)."""
    files, missing = find_result_files(paths)
    for path in missing:
        warn(f"path not found: {path}")
    if not files:
        raise UserError(f"no results.json found under {', '.join(paths)}")
    runs, problems = load_runs(files)
    for message in problems + duplicate_warnings(runs):
        warn(message)
    if not runs:
        raise UserError(f"no readable results.json under {', '.join(paths)} ({len(files)} skipped)")
    out_dir = Path(out) if out else default_out_dir(paths[0])
    summaries = aggregate(runs)
    for summary in summaries if show is not None else ():
        show(f"{setting_header(summary)}\n\n{markdown_table(summary)}\n")
    try:
        return write_report(summaries, out_dir)
    except OSError as err:  # unwritable or missing parent: a user problem, not a crash
        raise UserError(f"cannot write the report to {out_dir}: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 user error) instead of exiting."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad arguments
        return int(exc.code or 0)
    try:
        written = report(args.paths, args.out, show=print)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("wrote:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
