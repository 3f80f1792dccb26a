"""Fair tuning: every method gets the same budget, and first a coarse pass over its strength axis.

A study of TPE trials alone can spend a small budget where a method does nothing (e.g. gradient ascent at a
learning rate too small to move the forget accuracy) and never see where the method works. So each method's
search space (conf/hparams_search/<method>.yaml) names its `strength_axis`, the one knob that sets how hard
the method forgets (its learning rate, or its noise or dampening scale), and tuning runs in two passes:

1. coarse: `coarse` runs spread over the axis's whole declared range (log-spaced on a log axis), the other
   hyperparameters at the method's defaults;
2. TPE: the Optuna study of `trials` trials, with the axis narrowed to one coarse step either side of the best
   coarse point, the other hyperparameters over their declared ranges.

The best of both passes (lowest tune_gap, the Avg Gap without the test split) becomes the tuned preset. Every
run is a named, resumable sweep through the real `unlearn` command, on seed 0 only.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from unlearnbench.config import config_dir
from unlearnbench.errors import ConfigError

_SPACE = re.compile(r"^\s*(tag\(\s*log\s*,\s*)?interval\(\s*([^,\s]+)\s*,\s*([^,\s)]+)\s*\)\s*\)?\s*$")


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


@dataclass(frozen=True)
class Axis:
    """A method's strength axis: its override key and declared range."""

    key: str
    low: float
    high: float
    log: bool

    def coarse(self, n: int) -> list[float]:
        """`n` points spread over the whole range, both ends included (log-spaced on a log axis)."""
        if n < 2:
            raise ConfigError("--coarse", n, "at least 2 points")
        if self.log:
            ratio = (self.high / self.low) ** (1 / (n - 1))
            return [float(f"{self.low * ratio**i:.3g}") for i in range(n)]
        return [float(f"{self.low + (self.high - self.low) * i / (n - 1):.4g}") for i in range(n)]

    def narrowed(self, best: float, n: int) -> str:
        """The Optuna search-space override of one coarse step either side of `best`, inside the range."""
        if self.log:
            step = (self.high / self.low) ** (1 / (n - 1))
            low, high = max(self.low, best / step), min(self.high, best * step)
            return f"{self.key}=tag(log, interval({low:.3g}, {high:.3g}))"
        step = (self.high - self.low) / (n - 1)
        low, high = max(self.low, best - step), min(self.high, best + step)
        return f"{self.key}=interval({low:.4g}, {high:.4g})"


def search_space(method: str) -> dict:
    """conf/hparams_search/<method>.yaml as written (not composed)."""
    path = config_dir() / "hparams_search" / f"{method}.yaml"
    if not path.is_file():
        raise ConfigError("hparams_search", method, "a method with a search space in conf/hparams_search/")
    return OmegaConf.to_container(OmegaConf.load(path))


def strength_axis(method: str) -> Axis:
    """The method's declared `strength_axis` and its range from the search space's `params`."""
    space = search_space(method)
    key = space.get("strength_axis")
    params = space["hydra"]["sweeper"]["params"]
    if key not in params:
        raise ConfigError(f"hparams_search/{method}.yaml strength_axis", key, f"one of {sorted(params)}")
    match = _SPACE.match(str(params[key]))
    if match is None:
        raise ConfigError(
            f"hparams_search/{method}.yaml params.{key}",
            params[key],
            "interval(a, b) or tag(log, interval(a, b))",
        )
    return Axis(key, float(match.group(2)), float(match.group(3)), match.group(1) is not None)


def sweep_name(setting: str, method: str, stage: str, overrides: list[str]) -> str:
    """A resumable sweep's name; extra overrides get their own sweep (a smoke run never feeds the real one)."""
    extra = "_" + hashlib.sha256(" ".join(overrides).encode()).hexdigest()[:8] if overrides else ""
    return f"tune_{setting}_{method}{'_coarse' if stage == 'coarse' else ''}{extra}"


def _sweep_results(root: Path, name: str) -> list[dict]:
    return [
        json.loads(p.read_text()) for p in sorted((root / "outputs" / "sweeps" / name).glob("*/results.json"))
    ]


def coarse_points(runs: list[dict], key: str) -> list[dict]:
    """(value, tune_gap, forget_acc) of each finished coarse run, by the axis value."""
    points = []
    for r in runs:
        node = r["config"]
        for part in key.split("."):
            node = node[part]
        gap = r["metrics"].get("tune_gap") if r.get("status") == "ok" else None
        forget = r["metrics"].get("forget_acc") if r.get("status") == "ok" else None
        points.append({"value": float(node), "tune_gap": gap, "forget_acc": forget})
    return sorted(points, key=lambda p: p["value"])


def best_coarse(points: list[dict]) -> dict | None:
    finite = [p for p in points if p["tune_gap"] is not None and math.isfinite(p["tune_gap"])]
    return min(finite, key=lambda p: p["tune_gap"]) if finite else None


def choose(coarse: dict | None, tpe: dict | None, key: str) -> dict:
    """The better of the coarse pass's best point and the TPE study's best trial: {"params", "value", "pass"}."""
    options = []
    if tpe is not None and math.isfinite(tpe["value"]):
        options.append({"params": dict(tpe["params"]), "value": float(tpe["value"]), "pass": "TPE"})
    if coarse is not None:
        options.append(
            {"params": {key: coarse["value"]}, "value": float(coarse["tune_gap"]), "pass": "coarse"}
        )
    if not options:
        raise RuntimeError("neither the coarse pass nor the TPE study finished a run")
    return min(options, key=lambda o: o["value"])


def tune_method(
    method: str,
    setting: str,
    scenario: list[str],
    trials: int,
    coarse: int,
    data_dir: str,
    parallel: int = 1,
    overrides: list[str] | None = None,
    root: Path | None = None,
) -> dict:
    """Both passes for one method on experiment=`setting` (see the module docstring), run or resumed from
    `root`/outputs/sweeps; returns `choose`'s dict with the coarse points and both sweeps' summaries."""
    root = root or Path.cwd()
    extra = list(overrides or [])
    axis = strength_axis(method)
    common = [f"experiment={setting}", *scenario, "seed=0", *extra]
    name = sweep_name(setting, method, "coarse", extra)
    values = ",".join(repr(v) for v in axis.coarse(coarse))
    _, coarse_summary = run_named_sweep(
        name,
        [*common, f"method={method}", f"{axis.key}={values}"],
        data_dir,
        parallel,
        f"[tune] {method} coarse:",
        root,
    )
    points = coarse_points(_sweep_results(root, name), axis.key)
    best = best_coarse(points)
    name = sweep_name(setting, method, "tpe", extra)
    study = [
        f"hparams_search={method}",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.n_jobs={parallel}",
    ]
    if best is not None:
        study.append(axis.narrowed(best["value"], coarse))
    done, tpe_summary = run_named_sweep(
        name, [*common, *study], data_dir, parallel, f"[tune] {method} TPE:", root
    )
    found = root / "outputs" / "sweeps" / name / "optimization_results.yaml"
    tpe = None
    if found.is_file():
        result = OmegaConf.to_container(OmegaConf.load(found))
        tpe = {"params": result["best_params"], "value": result["best_value"]}
    try:
        chosen = choose(best, tpe, axis.key)
    except RuntimeError as err:
        tail = done.stderr.strip().splitlines()[-1:] or done.stdout.strip().splitlines()[-1:]
        raise RuntimeError(f"{method}: {err} (exit {done.returncode}: {tail})") from None
    return {
        **chosen,
        "axis": axis.key,
        "coarse": points,
        "summary": f"coarse {coarse_summary}; TPE {tpe_summary}",
    }
