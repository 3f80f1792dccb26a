"""The command's own wait: a cached default `unlearn` (every model from the cache) and `unlearn --help`, timed
side by side with `python -c "import torch"` (the floor) in one run; goals 3.5 s and 1.5 s. Also a cached
sweep's seconds per job (one process: the imports are paid once per sweep)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from unlearnbench.report.sections import replace_section
from unlearnbench.report.tables import markdown

# What a cached default run cannot avoid importing: torch, scikit-learn (the default MIAs: SVC for MIA-efficacy,
# logistic regression for MIA-loss and MIA-entropy; unlearnbench/metrics/lib/attacks.py) and Hydra. Not
# torch._dynamo, which a process's first torch.optim optimiser imports (~1.5 s): the methods' SGD does not use
# torch.optim (methods/lib/common.py).
RUN_IMPORTS = "import torch, sklearn.svm, sklearn.linear_model, sklearn.metrics, sklearn.model_selection, hydra, omegaconf"
SWEEP_JOBS = 5
SWEEP_ROW = f"unlearn -m seed=0,...,{SWEEP_JOBS - 1} (cached), per job"
GOALS = {"unlearn (cached)": 3.5, "unlearn --help": 1.5}


def _seconds(command: list[str], cwd: str, env: dict, stdout: list | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    if stdout is not None:
        stdout.append(done.stdout)
    return time.perf_counter() - start


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(repeats: int) -> tuple[dict[str, list[float]], float, list[str]]:
    """Each command's wall seconds over `repeats` interleaved rounds, the first (uncached) run's seconds and
    the cached runs' outputs."""
    unlearn = str(Path(sys.executable).parent / "unlearn")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        env = {**os.environ, "UNLEARN_CACHE": f"{tmp}/cache", "WANDB_MODE": "offline"}
        env.pop("PYTHONPATH", None)
        first = _seconds([unlearn], tmp, env)  # trains the original and Retrain: fills the cache
        # A sweep runs its jobs in one process (Hydra's basic launcher): the imports are paid once.
        sweep = [unlearn, "-m", f"seed={','.join(map(str, range(SWEEP_JOBS)))}"]
        _seconds(sweep, tmp, env)  # trains every seed's original and Retrain
        names = ("import torch", RUN_IMPORTS, "unlearn (cached)", "unlearn --help", SWEEP_ROW)
        times: dict[str, list[float]] = {name: [] for name in names}
        outputs: list[str] = []
        for _ in range(repeats):  # interleaved, so machine load hits every command alike
            times["import torch"].append(_seconds([sys.executable, "-c", "import torch"], tmp, env))
            times[RUN_IMPORTS].append(_seconds([sys.executable, "-c", RUN_IMPORTS], tmp, env))
            times["unlearn (cached)"].append(_seconds([unlearn], tmp, env, outputs))
            times["unlearn --help"].append(_seconds([unlearn, "--help"], tmp, env))
            times[SWEEP_ROW].append(_seconds(sweep, tmp, env) / SWEEP_JOBS)
    return times, first, outputs


def _goal(name: str, value: float) -> str:
    if name in GOALS:
        return f"<= {GOALS[name]} s: {'met' if value <= GOALS[name] else 'NOT met'}"
    return "floor" if name in ("import torch", RUN_IMPORTS) else ""


def section(median: dict[str, float], first: float, work: float, repeats: int, load_before: str) -> list[str]:
    """The doc section's lines: the table of medians, then what the cached run spends beyond its imports."""
    rows = [
        (f"`{name}`", f"{value:.2f}", f"{value / median['import torch']:.2f}x", _goal(name, value))
        for name, value in median.items()
    ]
    rest = median["unlearn (cached)"] - median[RUN_IMPORTS]
    return [
        f"`python scripts/benchmark.py cli --repeats {repeats}`: {repeats} interleaved repeats, median "
        f"wall seconds, {os.cpu_count()} CPU cores, torch {torch.__version__} (first, uncached run, which trains "
        f"the original and Retrain: {first:.1f} s; load average before/after: {load_before} / {_load()})",
        "",
        markdown(("command", "seconds", "vs import torch", "goal"), rows, "lrrl"),
        "",
        f"The imports a cached run cannot avoid (`{RUN_IMPORTS}`) take {median[RUN_IMPORTS]:.2f} s of the "
        f"cached run's {median['unlearn (cached)']:.2f} s; the other {rest:.2f} s compose the config, load the "
        f"cached models and data, run the method and evaluate (the run's own summary line says `total {work:.1f}s`, "
        "which counts the imports made inside the run: scikit-learn's).",
        "",
        f"A sweep pays the imports once: its {SWEEP_JOBS} cached default jobs (one per seed) take "
        f"{median[SWEEP_ROW]:.2f} s each, the sweep's wall time divided by its jobs.",
    ]


def bench_cli(args) -> dict:
    """Median wall seconds of a cached default `unlearn`, `unlearn --help` and `import torch`, interleaved."""
    load_before = _load()
    times, first, outputs = measure(args.repeats)
    median = {k: statistics.median(v) for k, v in times.items()}
    # The run's own "total" (set-up, method, evaluation; no imports), from its summary line.
    work = statistics.median(float(m.group(1)) for o in outputs if (m := re.search(r"total ([0-9.]+)s", o)))
    lines = section(median, first, work, args.repeats, load_before)
    print("\n" + "\n".join(lines))
    if args.doc:
        replace_section(
            Path(args.doc), "cli", "\n".join(["## The command's own wait (`unlearn`, cached)", "", *lines])
        )
        print(f"wrote the cli section of {args.doc}")
    return {"median_s": median, "first_s": first}
