#!/usr/bin/env python
"""Every GPU goal of the project in one run.

A thin command line: the code is `unlearnbench.bench.gpu_check` (the same as `python -m unlearnbench.bench.gpu_check`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.bench.gpu_check import main  # noqa: E402

if __name__ == "__main__":
    main()
