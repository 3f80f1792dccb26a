#!/usr/bin/env python
"""Speed benchmarks side by side: train, imu, lira, cli, all.

A thin command line: the code is `unlearnbench.bench.benchmark` (the same as `python -m unlearnbench.bench.benchmark`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.bench.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
