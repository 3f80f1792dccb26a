"""One job of a run or a sweep: skip it when already complete, record its failure, report the sweep.

A single run keeps the strict contract: bad input raises (the CLI prints one line, exit code 2) and leaves
no run directory behind. In a sweep a job never takes its siblings down: whatever goes wrong is written
to its `results.json` as `status: failed` with a one-line `reason`, and the sweep goes on; the
`SweepSummary` callback then prints one line and makes the command exit non-zero.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from unlearnbench.errors import UserError

log = logging.getLogger(__name__)

RESULTS = "results.json"
# Config keys that do not change a job's result (where files go, how it is shown, how the sweep is run).
NOT_RESULT_KEYS = ("paths", "logger", "sweep", "force", "strength_axis")  # strength_axis: read by tuning only
# Overrides left out when naming a job in the summary: they do not tell jobs apart by what they compute.
IGNORED_OVERRIDES = ("sweep", "force", "logger", "launcher", "trainer.enable_progress_bar")


class TrialFailed(RuntimeError):
    """Raised to an Optuna sweeper for a failed or diverged trial, so it records the trial as failed."""


def job_hash(cfg: DictConfig) -> str:
    """A hash of everything in the config that determines the job's results."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_RESULT_KEYS:
        container.pop(key, None)
    container.get("trainer", {}).pop("enable_progress_bar", None)
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()[:20]


def complete_results(out_dir: Path, expected_hash: str) -> dict | None:
    """The job's earlier results when they are whole, finished (ok or diverged) and from the same config."""
    try:
        results = json.loads((out_dir / RESULTS).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("job_hash") != expected_hash:
        return None
    return results if results.get("status") in ("ok", "diverged") else None


def failure_results(cfg: DictConfig, err: BaseException) -> dict:
    """The results.json of a job that could not finish: what it was, and why not."""
    reason = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, UserError):
        reason = f"{type(err).__name__}: {reason}"
    return {
        "status": "failed",
        "reason": reason,
        "method": OmegaConf.select(cfg, "method.name", default=None),
        "dataset": OmegaConf.select(cfg, "dataset.name", default=None),
        "model": OmegaConf.select(cfg, "model.name", default=None),
        "seed": OmegaConf.select(cfg, "seed", default=None),
        "forget": {
            "scenario": OmegaConf.select(cfg, "forget.name", default=None),
            "tag": OmegaConf.select(cfg, "forget.tag", default=None),
        },
        "metrics": None,
        "original": None,
        "retrain": None,
        "gap": {},
        "config": OmegaConf.to_container(cfg, resolve=False),
    }


def _remove_run_dir(out: Path, log_dir: Path) -> None:
    """A single run that failed on bad input leaves no directory behind (only Hydra's bookkeeping was in it)."""
    if not out.is_dir() or (out / RESULTS).exists():
        return
    shutil.rmtree(out, ignore_errors=True)
    top = log_dir.resolve()
    for parent in out.resolve().parents:  # and the now-empty folders Hydra made for it, outputs/ included
        if (parent != top and top not in parent.parents) or any(parent.iterdir()):
            break
        parent.rmdir()
        if parent == top:
            break


def run_job(cfg: DictConfig, keep_going: bool) -> dict:
    """Run one job and return its results; with `keep_going` (sweeps) a failure becomes results too."""
    from unlearnbench.files import atomic_write_text
    from unlearnbench.runner import run

    out = Path(cfg.paths.output_dir)
    digest = job_hash(cfg)
    if keep_going and not cfg.get("force", False):
        done = complete_results(out, digest)
        if done is not None:
            log.info("already complete, skipped: %s (force=true reruns it)", out)
            return done
    try:
        return run(cfg, job_hash=digest, progress=True)
    except Exception as err:
        if not keep_going:
            if isinstance(err, UserError):
                _remove_run_dir(out, Path(cfg.paths.log_dir))
            raise
        if not isinstance(err, UserError):  # a bug or a crash: keep the traceback in the job's log
            log.exception("job failed: %s", out)
        results = failure_results(cfg, err) | {"job_hash": digest}
        atomic_write_text(out / RESULTS, json.dumps(results, indent=2, default=str))
        log.error("job failed: %s", results["reason"])
        return results


def objective(results: dict, cfg: DictConfig, sweeper: Any = None) -> float:
    """The value a sweeper optimises (`optimize_metric`); NaN when it is missing (failed, diverged).

    The Optuna sweeper cannot take NaN, so there a missing value is raised as `TrialFailed` (its
    `max_failure_rate` in conf/hparams_search decides how many it tolerates).
    """
    key = cfg.get("optimize_metric")
    for source in (results.get("metrics") or {}, results.get("gap") or {}):
        if source.get(key) is not None:
            return float(source[key])
    if sweeper is not None and "optuna" in str(sweeper.get("_target_", "")).lower():
        raise TrialFailed(
            f"{key} not available: {results.get('status')} {results.get('reason') or ''}".strip()
        )
    return math.nan


def job_overrides(job_dir: Path) -> list[str]:
    """The overrides that made a job, as typed (`method=mnemonic`, `seed=1`), minus those that change nothing."""
    try:
        overrides = [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
    except OSError:
        return []
    return [o for o in overrides if o.split("=")[0].lstrip("+~") not in IGNORED_OVERRIDES]


def sweep_summary(sweep_dir: Path, started: float | None = None) -> tuple[str, int]:
    """`12 jobs: 11 ok, 1 failed: method=mnemonic: forget='random' ...` (with `started`, the sweep's start
    time: how many ran now and how many were skipped as already complete), then where the results are and the
    report command; and the number of failed jobs.

    A failed job is named by the overrides that differ between the sweep's jobs (its axes).
    """
    jobs, skipped = [], 0
    for path in sorted(sweep_dir.glob(f"*/{RESULTS}")):
        skipped += started is not None and path.stat().st_mtime < started
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError):
            results = {"status": "failed", "reason": f"unreadable {RESULTS}"}
        status = results.get("status") if results.get("status") in ("ok", "diverged") else "failed"
        jobs.append((status, results.get("reason"), job_overrides(path.parent) or [path.parent.name]))
    shared = set.intersection(*(set(o) for _, _, o in jobs)) if len(jobs) > 1 else set()
    counts = {status: sum(1 for s, _, _ in jobs if s == status) for status in ("ok", "diverged", "failed")}
    failures = [
        f"{' '.join(o for o in overrides if o not in shared)}: {reason}"
        for status, reason, overrides in jobs
        if status == "failed"
    ]
    parts = [f"{n} {status}" for status, n in counts.items() if n or status == "ok"]
    line = f"{len(jobs)} jobs: {', '.join(parts)}" + (f": {'; '.join(failures)}" if failures else "")
    if started is not None:
        line += (
            f"\n{len(jobs) - skipped} ran now, {skipped} skipped (finished earlier; force=true reruns them)"
        )
    line += f"\nresults: {sweep_dir}\nnext: unlearn-report {sweep_dir}   (tables, CSV, LaTeX and plots)"
    return line, counts["failed"]


class SweepSummary(Callback):
    """At the end of a sweep: one line saying how its jobs ended; exit code 1 when any failed."""

    started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        line, failed = sweep_summary(sweep_dir.resolve(), self.started)
        print(line, flush=True)
        if failed:
            # SystemExit passes through Hydra's callback guard (it catches Exception): the command fails.
            raise SystemExit(1)
