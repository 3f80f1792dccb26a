"""`launcher=submitit_slurm`: its config and helpers, and sweeps on a real Slurm cluster sharing one model cache.

The `slurm` tests need a cluster answering `sinfo`; `scripts/slurm_local.sh up` starts a one-node one on this machine (CI does,
and sets UNLEARN_REQUIRE_SLURM=1 so that a missing cluster fails instead of skipping). Without SLURM_CONF the
tests use that script's cluster when it is up.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import unlearn

from unlearnbench.config.core import config_dir
from unlearnbench.sweeps.slurm import SqueueWatcher

LOCAL_CONF = Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/unlearnbench-slurm")) / "slurm.conf"
# Tiny jobs, one CPU and 1 GB each (the launcher's defaults ask for 8 CPUs and 32 GB).
SWEEP = [
    "-m",
    "launcher=submitit_slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "logger=none",
    "eval=fast",
    "recipe.epochs=2",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def slurm_env() -> dict:
    """Environment for commands that reach the cluster; skips (or fails, in CI) when there is none."""
    env = {} if "SLURM_CONF" in os.environ or not LOCAL_CONF.exists() else {"SLURM_CONF": str(LOCAL_CONF)}
    if shutil.which("sbatch") is None:
        reason = "Slurm is not installed (no sbatch)"
    else:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
        )
        up = out.returncode == 0 and re.search(r"idle|mix|alloc", out.stdout)
        reason = None if up else "no Slurm cluster is up (start one: scripts/slurm_local.sh up)"
    if reason and os.environ.get("UNLEARN_REQUIRE_SLURM") == "1":
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    return env


@pytest.mark.parametrize(
    ("overrides", "gpus"),
    [
        ([], 0),
        (["trainer=gpu"], 1),
        (["trainer=gpu", "trainer.devices=2"], 2),
        (["trainer=gpu", "hydra.launcher.gpus_per_node=4"], 4),
    ],
)
def test_gpus_per_job_follow_the_trainer(overrides, gpus):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["launcher=submitit_slurm", *overrides], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher.gpus_per_node == gpus
    assert cfg.trainer.accelerator == (
        "gpu" if overrides else "cpu"
    )  # the launcher does not pick the trainer


def test_squeue_watcher_marks_jobs_it_no_longer_lists_as_finished():
    watcher = SqueueWatcher(delay_s=600)
    for job in ("7_0", "7_1", "7_2"):
        watcher.register_job(job)
    states = watcher.read_info("7_0|COMPLETED\n7_1|RUNNING\n8_0|PENDING\n")
    assert {job: info["State"] for job, info in states.items()} == {
        "7_0": "COMPLETED",
        "7_1": "RUNNING",
        "7_2": "FINISHED",
    }
    assert watcher._make_command()[0] == "squeue"


def sweep(args: list[str], tmp_path: Path, env: dict) -> tuple[subprocess.CompletedProcess, Path]:
    """Run a sweep on the cluster with its model cache in tmp_path/cache; return the result and the sweep dir."""
    out = unlearn([*SWEEP, f"paths.cache_dir={tmp_path / 'cache'}", *args], tmp_path, env=env, timeout=600)
    sweeps = list((tmp_path / "outputs" / "multirun").glob("*"))
    assert len(sweeps) == 1, out.stdout[-2000:] + out.stderr[-2000:]
    return out, sweeps[0]


@pytest.mark.slurm
@pytest.mark.slow
def test_sweep_on_slurm_shares_one_model_cache(tmp_path, slurm_env):
    # seed outermost: the two jobs of a seed start together, so one trains its original while the other waits
    out, sweep_dir = sweep(["seed=0,1", "method=ft,ga", "method.epochs=1"], tmp_path, slurm_env)
    assert out.returncode == 0, out.stderr[-3000:]

    results = [json.loads(p.read_text()) for p in sweep_dir.glob("*/results.json")]
    assert sorted((r["method"], r["seed"], r["status"]) for r in results) == [
        ("ft", 0, "ok"),
        ("ft", 1, "ok"),
        ("ga", 0, "ok"),
        ("ga", 1, "ok"),
    ]
    for seed in (0, 1):
        runs = [r["cache"]["original"] for r in results if r["seed"] == seed]
        assert len({c["key"] for c in runs}) == 1
        assert sorted(c["hit"] for c in runs) == [False, True], f"seed {seed}: the original is trained once"
    assert len(list((tmp_path / "cache" / "models").glob("original-*.pt"))) == 2

    # every job ran as a Slurm array task, with no GPU asked for (a CPU trainer)
    tasks = [p for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and "_" in p.name]
    assert len(tasks) == 4 and all(list(t.glob("*_result.pkl")) for t in tasks)
    script = next((sweep_dir / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "--gpus-per-node=0" in script
    # a cluster without accounting: one line about it, no sacct error at every poll
    output = out.stdout + out.stderr
    assert output.count("Slurm accounting is disabled") <= 1 and "sacct error" not in output

    report = subprocess.run(
        [sys.executable, "-m", "unlearnbench.report.cli", str(sweep_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    assert "4 runs in 1 setting" in (sweep_dir / "report.md").read_text()
    with open(sweep_dir / "report.csv") as f:
        rows = {row["method"]: row for row in csv.DictReader(f)}
    assert rows["ft"]["n_seeds"] == rows["ga"]["n_seeds"] == "2"


@pytest.mark.slurm
@pytest.mark.slow
def test_failed_job_on_slurm_is_reported(tmp_path, slurm_env):
    """Needs the CLI's failed-job handling: a failing job writes results.json with status "failed" and a reason,
    the sweep goes on, and the command prints 'N jobs: K ok, F failed: ...' and exits non-zero."""
    # mnemonic is class-wise only: its job fails on random forgetting
    out, sweep_dir = sweep(["seed=0", "method=none,mnemonic"], tmp_path, slurm_env)
    assert out.returncode != 0
    output = out.stdout + out.stderr
    summary = [line for line in output.splitlines() if re.search(r"\d+ jobs: \d+ ok, \d+ failed", line)]
    assert summary, output[-3000:]
    assert "2 jobs: 1 ok, 1 failed" in summary[-1] and "mnemonic" in summary[-1]
    ok, failed = (
        json.loads(next(sweep_dir.glob(f"*method={m}*/results.json")).read_text())
        for m in ("none", "mnemonic")
    )
    assert ok["status"] == "ok"
    assert failed["status"] == "failed" and failed["reason"]
