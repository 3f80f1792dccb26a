#!/usr/bin/env python
"""Shadow models per minute of eval=full, sequential vs batched.

A thin command line: the code is `unlearnbench.bench.lira` (the same as `python -m unlearnbench.bench.lira`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.bench.lira import main  # noqa: E402

if __name__ == "__main__":
    main()
