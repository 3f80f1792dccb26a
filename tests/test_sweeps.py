"""Sweeps through the installed `unlearn` console script: every sweep syntax, failed jobs, resuming."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # CLI sweeps and many runs: in CI's slow step (README, Development)

UNLEARN = str(Path(sys.executable).parent / "unlearn")
QUICK = ["logger=none", "eval=fast", "recipe.epochs=1", "trainer.enable_progress_bar=false"]


def unlearn(args: list[str], cwd: Path, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [UNLEARN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def results_under(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.rglob("results.json")}


def test_a_bad_job_fails_alone_and_the_sweep_goes_on(tmp_path):
    out = unlearn(["-m", "method=ft,mnemonic,ga", *QUICK], tmp_path)
    assert out.returncode == 1, out.stderr[-2000:]
    results = results_under(tmp_path / "outputs" / "multirun")
    assert sorted(r["method"] for r in results.values()) == ["ft", "ga", "mnemonic"]
    failed = [r for r in results.values() if r["status"] == "failed"]
    assert [r["method"] for r in failed] == ["mnemonic"] and "class-wise" in failed[0]["reason"]
    summary = [line for line in out.stdout.splitlines() if line.startswith("3 jobs:")]
    assert summary == [f"3 jobs: 2 ok, 1 failed: method=mnemonic: {failed[0]['reason']}"], out.stdout[-2000:]


@pytest.mark.slow
def test_glob_over_experiment_presets_runs_every_preset(tmp_path, shared_data, decoded_cifar10_jpeg):
    """Every experiment preset (the papers' protocols, the CPU setting, ...) runs end to end under debug=fast,
    on fakes of the datasets that are not at hand offline (CIFAR-10, MNIST) and the shared ones."""
    from conftest import write_fake_cifar10, write_fake_mnist

    from unlearnbench.cli.usage import group_options

    data = tmp_path / "data"
    write_fake_cifar10(data, per_batch=40, n_test=50)
    write_fake_mnist(data)
    for name in ("FashionMNIST", "cifar10-jpeg.tar.gz"):
        (data / name).symlink_to(shared_data / name)
    out = unlearn(
        ["-m", "experiment=glob(*)", "debug=fast", f"paths.data_dir={data}", "++dataset.download=false"],
        tmp_path,
    )
    results = results_under(tmp_path / "outputs" / "multirun")
    ran = {name.split("experiment=")[1].split(",")[0]: r for name, r in results.items()}
    assert sorted(ran) == group_options("experiment"), out.stdout[-2000:]
    assert {name: r["status"] for name, r in ran.items() if r["status"] != "ok"} == {}, out.stdout[-3000:]
    assert f"{len(ran)} jobs: {len(ran)} ok" in out.stdout


@pytest.mark.parametrize("sweep", ["seed=range(0,2)", "method=choice(ft,none)", "forget_ratio=0.05,0.1"])
def test_hydra_sweep_syntax(tmp_path, sweep):
    out = unlearn(["-m", sweep, *QUICK], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    results = results_under(tmp_path / "outputs" / "multirun")
    assert len(results) == 2 and all(r["status"] == "ok" for r in results.values())
    assert "2 jobs: 2 ok" in out.stdout


def test_optuna_search_space_on_the_command_line(tmp_path):
    out = unlearn(
        [
            "-m",
            "hparams_search=imu",
            "method.lr=tag(log, interval(0.001, 0.1))",
            "method.top_data=choice(0.2, 0.4)",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=1",
            "method.epochs=1",
            *QUICK[:1],
            *QUICK[2:],
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = list(results_under(tmp_path / "outputs" / "multirun").values())
    assert len(results) == 2
    for r in results:
        assert 0.001 <= r["config"]["method"]["lr"] <= 0.1 and r["config"]["method"]["top_data"] in (0.2, 0.4)
        assert r["metrics"]["avg_gap"] is not None  # the objective the study minimised


def test_a_failed_optuna_trial_is_recorded_as_failed_and_the_study_goes_on(tmp_path):
    out = unlearn(
        [
            "-m",
            "hparams_search=imu",
            "method.top_data=choice(2.0, 0.3)",
            "method.epochs=1",
            "hydra.sweeper.n_trials=3",
            *QUICK[:1],
            *QUICK[2:],
        ],
        tmp_path,
    )
    assert out.returncode == 1, out.stderr[-2000:]  # a failed job makes the command fail, after the study
    statuses = [r["status"] for r in results_under(tmp_path / "outputs" / "multirun").values()]
    assert len(statuses) == 3 and "failed" in statuses and "ok" in statuses
    best = (next((tmp_path / "outputs" / "multirun").iterdir()) / "optimization_results.yaml").read_text()
    assert "method.top_data: 0.3" in best  # the failed trial (top_data 2.0) never counted as a score


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    out = unlearn(["-m", "launcher=joblib", "method=ft,none", *QUICK], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Joblib" in out.stdout + out.stderr and "2 jobs: 2 ok" in out.stdout


def test_submitit_launcher_config_composes(tmp_path):
    out = unlearn(["launcher=submitit_slurm", "--cfg", "hydra"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "submitit_slurm" in out.stdout and "partition:" in out.stdout


def test_killed_named_sweep_reruns_only_the_missing_jobs(tmp_path, capsys):
    args = ["-m", "sweep=resume", "method=none,ft", "seed=0,1", *QUICK]
    sweep = tmp_path / "outputs" / "sweeps" / "resume"
    proc = subprocess.Popen(
        [UNLEARN, *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while len(list(sweep.rglob("results.json"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in sweep.rglob("results.json")}
    assert 2 <= len(before) < 4, "the sweep was not caught halfway"

    out = unlearn(args, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    after = {p: p.stat().st_mtime_ns for p in sweep.rglob("results.json")}
    assert len(after) == 4 and all(after[p] == mtime for p, mtime in before.items())  # finished jobs skipped
    assert out.stdout.count("already complete") == len(before)
    assert "4 jobs: 4 ok" in out.stdout
    assert f"{4 - len(before)} ran now, {len(before)} skipped (finished earlier" in out.stdout
    assert (
        f"results: {sweep.resolve()}" in out.stdout
        and f"next: unlearn-report {sweep.resolve()}" in out.stdout
    )

    import csv

    from unlearnbench.report.cli import main as report_main

    assert report_main([str(sweep)]) == 0
    printed = capsys.readouterr().out
    table = printed.split("wrote:")[0]  # each setting's table, in the terminal too
    assert (
        "| Method |" in table
        and re.search(r"\n\| ft( !)? \|", table)
        and re.search(r"\n\| none( !)? \|", table)
    )
    assert "report.csv" in printed.split("wrote:")[1]
    rows = list(csv.DictReader((sweep / "report.csv").read_text().splitlines()))
    seeds = {row["method"]: int(row["n_seeds"]) for row in rows if row["kind"] == "method"}
    assert seeds == {"ft": 2, "none": 2}  # all 4 jobs are in the report


def test_force_reruns_a_complete_named_sweep(tmp_path):
    args = ["-m", "sweep=again", "method=none", *QUICK]
    assert unlearn(args, tmp_path).returncode == 0
    first = next((tmp_path / "outputs" / "sweeps" / "again").rglob("results.json")).stat().st_mtime_ns
    assert unlearn(args, tmp_path).returncode == 0
    second = next((tmp_path / "outputs" / "sweeps" / "again").rglob("results.json")).stat().st_mtime_ns
    assert second == first
    assert unlearn([*args, "force=true"], tmp_path).returncode == 0
    third = next((tmp_path / "outputs" / "sweeps" / "again").rglob("results.json")).stat().st_mtime_ns
    assert third > first
