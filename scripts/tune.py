#!/usr/bin/env python
"""Tune every method the same way on one setting; write conf/tuned/<setting>/<method>.yaml.

A thin command line: the code is `unlearnbench.sweeps.tuning` (the same as `python -m unlearnbench.sweeps.tuning`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.sweeps.tuning import main  # noqa: E402

if __name__ == "__main__":
    main()
