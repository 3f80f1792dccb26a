#!/usr/bin/env python
"""Run a paper's protocol and write docs/paper_<protocol>.md.

A thin command line: the code is `unlearnbench.sweeps.protocols` (the same as `python -m unlearnbench.sweeps.protocols`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, installed or not

from unlearnbench.sweeps.protocols import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
