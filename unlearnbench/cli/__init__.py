"""The command line: `unlearn` (app), its one-line errors and help (usage), the table it prints (console) and
its progress lines (progress)."""

from unlearnbench.cli.app import main

__all__ = ["main"]
