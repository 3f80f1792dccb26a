"""One prepared GPU check: every speed and accuracy goal of the project, measured in one run.

    python scripts/gpu_check.py --data-dir DATA                      # the check (<= 8 min on an H100)
    (`python -m unlearnbench.bench.gpu_check` is the same command)
    python scripts/gpu_check.py --device cpu --tiny --json J --doc D  # the same code paths in seconds
    python scripts/gpu_check.py --steps A B --keep EARLIER.json      # rerun steps A, B; keep the others
    python scripts/gpu_check.py --from-json RUN.json --steps A --keep EARLIER.json   # write, run nothing

DATA holds FashionMNIST/raw (the four idx files) and cifar10-jpeg.tar.gz (or cifar-10-batches-py/).
The steps (steps.py: each declared with `@step` in training.py, runs.py and evaluation.py) run in sequence,
each under its own time budget (SIGALRM) and all under --budget; a step that fails or runs out of time is recorded as such and the next one runs.
After every step the JSON (--json) and the doc section between the gpu-check markers of --doc
(default: docs/benchmarks.md, not with --tiny) are rewritten, so a run cut short keeps what it measured.
Every figure is written next to its goal with met / not met.

On a machine lent by the `device` tool (no internet, Python 3.12 with torch and Lightning but no Hydra):
`bash scripts/gpu_session.sh prepare` here, then there `bash scripts/gpu_session.sh run` with
carry ["outputs/gpu_carry"] and timeout_s 600; scripts/gpu_session.sh says what travels and why.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytorch_lightning as pl
import torch

from unlearnbench.bench import bench_device
from unlearnbench.bench.gpu_check.core import Check, bf16_peak
from unlearnbench.bench.gpu_check.report import keep_earlier, not_run, run_step, write_outputs
from unlearnbench.bench.gpu_check.steps import STEPS
from unlearnbench.sweeps.named import ROOT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir",
        default=str(ROOT.parent / "shared" / "data"),
        help="folder with FashionMNIST/raw and cifar10-jpeg.tar.gz (not read with --tiny)",
    )
    p.add_argument("--json", default=str(ROOT / "outputs" / "gpu_check.json"))
    p.add_argument(
        "--doc",
        default=None,
        help="markdown file whose gpu-check section is rewritten "
        "(default: docs/benchmarks.md; none with --tiny)",
    )
    p.add_argument("--work-dir", default=str(ROOT / "outputs" / "gpu_check"), help="caches and scratch files")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--tiny", action="store_true", help="tiny data and models: every step's code in seconds")
    p.add_argument(
        "--budget",
        type=float,
        default=465.0,
        help="seconds for all steps together (465: under 8 min with the start-up)",
    )
    p.add_argument("--steps", nargs="+", choices=[s.name for s in STEPS], help="run only these steps")
    p.add_argument(
        "--from-json",
        help="run nothing: write --json and --doc from this run's JSON (with --steps and --keep, the steps "
        "named come from it and the others from --keep)",
    )
    p.add_argument(
        "--keep",
        help="an earlier run's JSON: the steps that --steps leaves out keep their entries from it (marked so)",
    )
    args = p.parse_args(argv)
    if args.doc is None and not args.tiny:
        args.doc = str(ROOT / "docs" / "benchmarks.md")
    return args


def start_run(args: argparse.Namespace, now: list[str]) -> tuple[Check, dict]:
    """The check's device and working folder, and a report that lists every step, none measured yet."""
    device = bench_device(args.device)
    args.device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    )
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    peak, source = bf16_peak(args.device_name)
    report = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tiny": args.tiny,
        "device": str(device),
        "device_name": args.device_name,
        "peak_bf16_tflops": peak,
        "peak_source": source,
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "budget_s": args.budget,
        "total_s": 0.0,
        "steps": [
            not_run(step, "not reached (the run was stopped)" if step.name in now else "left out by --steps")
            for step in STEPS
        ],
    }
    return Check(args, device, work), report


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    now = args.steps or [step.name for step in STEPS]  # the steps run now (or taken from --from-json)
    if args.from_json:
        check, report = None, json.loads(Path(args.from_json).read_text())
    else:
        check, report = start_run(args, now)
    if args.keep:
        keep_earlier(report, json.loads(Path(args.keep).read_text()), now)
    write_outputs(report, args)  # every step listed from the start, in case the run is killed
    if check is not None:
        start = time.perf_counter()
        for i, step in enumerate(STEPS):
            if step.name in now:
                report["steps"][i] = run_step(step, check, args.budget - (time.perf_counter() - start))
                report["total_s"] = time.perf_counter() - start
                write_outputs(report, args)
    print(f"\nwrote {args.json}" + (f" and the gpu-check section of {args.doc}" if args.doc else ""))
    return report


if __name__ == "__main__":
    main()
