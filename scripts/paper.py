#!/usr/bin/env python
"""Run a paper's protocol in one command: its sweep (methods x settings x seeds) and then the report.

The settings are the experiment presets in conf/experiment/ (each cites its paper and the authors' code);
the sweep is named, so a stopped run resumes where it stopped. Meant for a GPU machine (182-200 epochs of
ResNet-18); `--smoke` runs the same sweep with `debug=fast` to check it end to end on a CPU in minutes.

  python scripts/paper.py salun_cifar10                 # SalUn Table 1 rows + IMU, 3 seeds
  python scripts/paper.py gradtau_cifar10 --seeds 0     # 3 / 15 / 30 % forgetting
  python scripts/paper.py mnemonic_mnist --smoke        # a quick check
  make paper PROTOCOL=imu_cifar10
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# protocol -> the sweep's own overrides (beyond experiment=<protocol>)
PROTOCOLS = {
    "salun_cifar10": ["method=retrain,ft,random_label,ga,l1_sparse,boundary_shrink,salun,imu"],
    "imu_cifar10": ["method=retrain,ga,imu"],
    "gradtau_cifar10": ["method=retrain,gradtau,ga,ft", "forget_ratio=0.03,0.15,0.3"],
    "mnemonic_cifar10": ["method=retrain,mnemonic"],
    "mnemonic_mnist": ["method=retrain,mnemonic"],
}


def commands(protocol: str, seeds: list[int], smoke: bool, extra: list[str]) -> tuple[list[str], Path]:
    """The `unlearn` sweep and where its results go."""
    name = f"paper_{protocol}" + ("_smoke" if smoke else "")
    sweep = [
        str(Path(sys.executable).parent / "unlearn"),
        "-m",
        f"experiment={protocol}",
        *PROTOCOLS[protocol],
        f"seed={','.join(map(str, seeds))}",
        f"sweep={name}",
        *(["debug=fast"] if smoke else []),
        *extra,
    ]
    return sweep, ROOT / "outputs" / "sweeps" / name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--smoke", action="store_true", help="debug=fast: check the sweep end to end, quickly")
    p.add_argument("overrides", nargs="*", help="extra overrides, e.g. paths.data_dir=/data trainer=gpu")
    args = p.parse_args(argv)
    sweep, folder = commands(args.protocol, args.seeds, args.smoke, args.overrides)
    print(" ".join(sweep[1:]), flush=True)
    status = subprocess.run(sweep, cwd=ROOT).returncode  # non-zero when a job failed; report what finished
    report = subprocess.run([str(Path(sys.executable).parent / "unlearn-report"), str(folder)], cwd=ROOT)
    return status or report.returncode


if __name__ == "__main__":
    sys.exit(main())
