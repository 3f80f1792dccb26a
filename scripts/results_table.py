#!/usr/bin/env python
"""Regenerate docs/results.md: every method on the memorising setting, and the papers' claims.

A thin command line: the code is `unlearnbench.report.results` (the same as `python -m unlearnbench.report.results`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.report.results import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
