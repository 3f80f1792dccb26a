#!/usr/bin/env python
"""IMU influence scores: closed form vs per-sample autograd loop.

A thin command line: the code is `unlearnbench.bench.imu` (the same as `python -m unlearnbench.bench.imu`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.bench.imu import main  # noqa: E402

if __name__ == "__main__":
    main()
