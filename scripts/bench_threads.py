#!/usr/bin/env python
"""One vs all CPU threads, on a quiet and on a loaded machine.

A thin command line: the code is `unlearnbench.bench.threads` (the same as `python -m unlearnbench.bench.threads`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.bench.threads import main  # noqa: E402

if __name__ == "__main__":
    main()
