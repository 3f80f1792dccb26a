"""Named sweeps: `unlearn -m sweep=NAME ...` run as a subprocess, resumable (a finished job is skipped), their
jobs' results read back from `outputs/sweeps/NAME/` of the checkout. Tuning, the results document and the
papers' protocols launch their grids through here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The checkout this package runs from: its conf/, docs/ and outputs/ (the scripts' parent folder).
ROOT = Path(__file__).resolve().parents[2]


def run_named_sweep(
    name: str,
    overrides: list[str],
    data_dir: str,
    parallel: int = 1,
    tag: str = "[results]",
    cwd: Path | None = None,
) -> tuple[subprocess.CompletedProcess, str]:
    """`unlearn -m OVERRIDES` as the named (resumable) sweep NAME, without logger or progress bars, in
    `parallel` joblib processes; return the finished process and the sweep's summary line ("" if none)."""
    command = [
        str(Path(sys.executable).parent / "unlearn"),
        "-m",
        *overrides,
        f"sweep={name}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.data_dir={data_dir}",
        *(["launcher=joblib", f"hydra.launcher.n_jobs={parallel}"] if parallel > 1 else []),
    ]
    print(f"{tag} {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    summary = [line for line in done.stdout.splitlines() if " jobs: " in line]
    return done, summary[-1] if summary else ""


def sweep_results(root: Path, name: str) -> list[dict]:
    """The results.json of every finished job of the sweep NAME under `root`/outputs/sweeps."""
    return [
        json.loads(p.read_text()) for p in sorted((root / "outputs" / "sweeps" / name).glob("*/results.json"))
    ]
