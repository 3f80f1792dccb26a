"""How many CPU threads a run should use: one vs all cores, on a quiet and on a loaded machine.

Times a fresh-cache `unlearn` (the default run) and a shortened memorise run with `runtime.threads=1` and
`runtime.threads=<cores>`, first on the machine as it is, then with one busy process per core beside it (the
"loaded" case: another job on the same machine). Ratios are measured side by side in one run.

    python scripts/bench_threads.py --data-dir ../shared/data --doc docs/benchmarks.md
    (the same as `python -m unlearnbench.bench.threads ...`)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from unlearnbench.report.sections import replace_section
from unlearnbench.report.tables import markdown
from unlearnbench.sweeps.named import ROOT

UNLEARN = str(Path(sys.executable).parent / "unlearn")


def settings(data_dir: str, memorise_epochs: int, folder: Path) -> dict[str, list[str]]:
    return {
        "default run (digits)": [],
        f"memorise_cifar10, {memorise_epochs} epochs": [
            "experiment=memorise_cifar10",
            f"paths.data_dir={Path(data_dir).resolve()}",
            f"recipe.epochs={memorise_epochs}",
            f"dataset.source.cache_dir={folder / 'datasets'}",  # decoded once, shared by the fresh caches
        ],
    }


@contextmanager
def busy_cores(n: int):
    """`n` processes spinning on the CPU while the block runs (0: none)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(1.0 if n else 0.0)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def seconds(overrides: list[str], threads: int, folder: Path) -> float:
    """Wall seconds of one fresh-cache run (its own cache folder, the decoded datasets shared)."""
    env = {
        **os.environ,
        "UNLEARN_CACHE": str(folder / f"cache-{time.monotonic_ns()}"),
        "WANDB_MODE": "offline",
    }
    start = time.perf_counter()
    command = [UNLEARN, *overrides, f"runtime.threads={threads}", "logger=none"]
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--memorise-epochs", type=int, default=3)
    p.add_argument("--doc", help="write the threads section of this markdown file")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_threads_") as tmp:
        for name, overrides in settings(args.data_dir, args.memorise_epochs, Path(tmp)).items():
            seconds(overrides, 1, Path(tmp))  # warm-up: decodes and caches the dataset once
            for load in (0, cores):
                with busy_cores(load):
                    one, many = seconds(overrides, 1, Path(tmp)), seconds(overrides, cores, Path(tmp))
                rows.append((name, "loaded" if load else "as it is", one, many))
                print(rows[-1], flush=True)
    lines = [
        f"`python scripts/bench_threads.py`: wall seconds of one fresh-cache run, {cores} cores, with "
        f"`runtime.threads=1` and `runtime.threads={cores}`; 'loaded' = {cores} busy processes beside the run "
        f"(1-minute load average before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}).",
        "",
        markdown(
            ("run", "machine", "1 thread (s)", f"{cores} threads (s)", f"{cores} threads / 1 thread"),
            [(n, m, f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}x") for n, m, a, b in rows],
            "llrrr",
        ),
    ]
    print("\n".join(lines))
    if args.doc:
        replace_section(
            Path(args.doc), "threads", "\n".join(["## CPU threads (`runtime.threads`)", "", *lines])
        )


if __name__ == "__main__":
    main()
