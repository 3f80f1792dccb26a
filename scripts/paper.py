#!/usr/bin/env python
"""Run a paper's protocol and write its document: docs/paper_<protocol>.md, ours beside the paper's values.

A thin command line over unlearnbench.protocols (the protocols, their sweeps, where results are kept) and
unlearnbench.report.paper (the document). The sweeps are named, so a stopped run resumes where it stopped; each
finished run's small results file is kept in docs/paper/<protocol>/ (committed, no models), and seeds already
kept stay in the document when later seeds are added. Meant for a GPU machine; `--smoke` runs every part tiny
(debug=fast, stand-in local data) on a CPU, keeps it apart in docs/paper/<protocol>/smoke/, and the document
marks its numbers as smoke while no real run is kept.

  python scripts/paper.py salun_cifar10 --seeds 0              # SalUn Table 1, one seed
  python scripts/paper.py salun_cifar10 --seeds 1 2            # two more seeds, added to the same document
  python scripts/paper.py gradtau_cifar10 --smoke paths.data_dir=../shared/data
  python scripts/paper.py salun_cifar10 --report-only          # after a cut-off command: keep what finished
  make paper PROTOCOL=imu_cifar10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearnbench.protocols import PROTOCOLS, run_protocol  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--smoke", action="store_true", help="debug=fast on local stand-in data: a quick end-to-end check"
    )
    p.add_argument(
        "--report-only", action="store_true", help="keep the runs finished so far and rewrite the document"
    )
    p.add_argument("overrides", nargs="*", help="extra overrides, e.g. paths.data_dir=/data trainer=gpu")
    args = p.parse_intermixed_args(argv)
    return run_protocol(args.protocol, args.seeds, args.smoke, args.overrides, ROOT, run=not args.report_only)


if __name__ == "__main__":
    sys.exit(main())
