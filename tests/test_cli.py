"""The real `unlearn` command: help, config printing, bad input, multirun, W&B offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["recipe.epochs=2", "method.epochs=1", "trainer.enable_progress_bar=false"]


def unlearn(
    args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "0",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "unlearnbench.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_groups(tmp_path):
    out = unlearn(["--help"], tmp_path)
    assert out.returncode == 0
    from unlearnbench.cli.usage import group_options

    for group in (
        "dataset",
        "method",
        "model",
        "recipe",
        "forget",
        "eval",
        "trainer",
        "logger",
        "experiment",
    ):
        assert f"\n{group}: {', '.join(group_options(group))}\n" in out.stdout, group
    # every method, from its class: its summary, the data it sees, the scenarios where not all
    methods = out.stdout.split("== Methods")[1].split("Print the composed")[0]
    listed = {line.split()[0]: line for line in methods.splitlines() if line.startswith("  ")}
    assert sorted(listed) == group_options("method")
    assert listed["imu"].endswith("[forget]") and listed["gradtau"].endswith("[forget, retain, val]")
    assert (
        listed["mnemonic"].endswith("[no data; class-wise only]") and "mnemonic codes" in listed["mnemonic"]
    )


def test_cfg_job_prints_composed_config(tmp_path):
    out = unlearn(
        ["--cfg", "job", "method=ft", "dataset=fashion_mnist", "forget=class", "forget.classes=[0]"], tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert (
        "name: fashion_mnist" in out.stdout
        and "name: resnet18" in out.stdout
        and "classes:\n  - 0" in out.stdout
    )
    assert not (tmp_path / "outputs").exists()


BAD_INPUTS = [
    (["method=nope"], "method=nope", "ft"),
    (["dataset=imagenet"], "dataset=imagenet", "cifar10"),
    (["forget_ratio=1.5"], "forget_ratio", "(0.0, 1.0)"),
    (["forget_ratio=0"], "forget_ratio", "(0.0, 1.0)"),
    (["forget=class", "forget.classes=[12]"], "forget.classes", "0..9"),
    (["forget=subclass"], "forget", "cifar100"),
    (
        ["dataset=cifar10", "dataset.download=false", "paths.data_dir=nowhere"],
        "dataset=cifar10",
        "cifar10_jpeg",
    ),
    (["+method.learning_rate=0.1"], "method.learning_rate", "lr"),
]


@pytest.mark.parametrize(
    ("args", "names", "allowed"), BAD_INPUTS, ids=[" ".join(a) for a, _, _ in BAD_INPUTS]
)
def test_bad_input_is_one_clear_line(tmp_path, args, names, allowed):
    out = unlearn(args + ["logger=none"], tmp_path)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert names in lines[0] and allowed in lines[0]
    assert "Traceback" not in out.stderr
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.rglob("*.pt"))
    assert not list(tmp_path.rglob("results.json"))


def test_multirun_trains_the_original_once(tmp_path):
    tiny = [TINY[0], TINY[2]]  # retrain has no method.epochs
    out = unlearn(
        ["-m", "method=ft,ga,retrain", "forget_ratio=0.05,0.1", "logger=none", *tiny], tmp_path, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "outputs" / "multirun").rglob("results.json")]
    assert len(results) == 6
    original_trained = [r for r in results if not r["cache"]["original"]["hit"]]
    assert len(original_trained) == 1
    assert len({r["cache"]["original"]["key"] for r in results}) == 1
    assert len(list((tmp_path / "cache" / "models").glob("original-*.pt"))) == 1
    assert {(r["method"], r["forget"]["ratio"]) for r in results} == {
        (m, f) for m in ("ft", "ga", "retrain") for f in (0.05, 0.1)
    }


def test_wandb_logger_runs_offline(tmp_path):
    out = unlearn(["logger=wandb", "method=none", *TINY[:1]], tmp_path, env={"WANDB_API_KEY": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    run_dirs = [p.parent for p in (tmp_path / "outputs" / "runs").rglob("results.json")]
    assert len(run_dirs) == 1
    # The run ends by saying where its results are and what to do next.
    assert out.stdout.splitlines()[-2:] == [
        f"results: {run_dirs[0]}/results.json",
        f"next: unlearn-report {run_dirs[0]}   (tables, CSV, LaTeX and plots)",
    ]
    offline = list((run_dirs[0] / "wandb").glob("offline-run-*"))
    assert offline, "expected an offline W&B run directory"
    assert list(offline[0].glob("*.wandb"))


def test_mission_command_defaults_auto_device_download_and_retrain(tmp_path):
    out = unlearn(["method=imu", "dataset=cifar10", "forget_ratio=0.1", "--cfg", "job"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "accelerator: ${on_cuda:gpu,cpu}" in out.stdout  # trainer=auto
    assert "download: true" in out.stdout and "retrain: true" in out.stdout


def _cli(args: list[str], tmp_path, monkeypatch, capsys):
    """`unlearn ARGS` in this process (so a fake downloader can stand in for the network)."""
    from unlearnbench import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["unlearn", *args, "logger=none", "trainer.enable_progress_bar=false"])
    try:
        cli.main()
        code = 0
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr()


def test_dataset_download_true_fetches_into_the_data_dir(tmp_path, monkeypatch, capsys):
    import torchvision.datasets
    from conftest import write_fake_cifar10

    fetched = []

    def fake_cifar10(root, train=True, download=False, **kwargs):
        fetched.append(Path(root))
        write_fake_cifar10(Path(root), per_batch=40, n_test=50)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    code, out = _cli(
        [
            "dataset=cifar10",
            "dataset.download=true",
            "model=small_cnn",
            "debug=fast",
            "paths.data_dir=downloads",
        ],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 0, out.err
    assert [p.resolve() for p in fetched] == [(tmp_path / "downloads").resolve()]
    assert (tmp_path / "downloads" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert list((tmp_path / "outputs" / "runs" / "cifar10").rglob("results.json"))


def test_offline_missing_dataset_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    from urllib.error import URLError

    import torchvision.datasets

    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    code, out = _cli(["dataset=cifar10"], tmp_path, monkeypatch, capsys)
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out.err
    assert str((tmp_path / "data").resolve()) in lines[0] and "dataset=cifar10_jpeg" in lines[0]
    assert "download failed" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no empty outputs/ or data/ folders


def test_the_model_cache_is_shared_by_runs_started_from_any_folder(tmp_path):
    """One user, two working folders, no UNLEARN_CACHE: the second folder gets cache hits (XDG cache)."""
    env = {"UNLEARN_CACHE": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    runs = []
    for folder in ("project_a", "project_b"):
        (tmp_path / folder).mkdir()
        out = unlearn(
            ["method=none", "eval=fast", "recipe.epochs=1", "logger=none"], tmp_path / folder, env=env
        )
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(next((tmp_path / folder / "outputs").rglob("results.json")).read_text()))
    assert not runs[0]["cache"]["original"]["hit"] and runs[1]["cache"]["original"]["hit"]
    assert runs[1]["cache"]["original"]["path"].startswith(str(tmp_path / "xdg" / "unlearnbench"))
    assert not (tmp_path / "project_a" / "outputs" / "cache").exists()


def test_typos_fail_in_one_line_with_a_suggestion(tmp_path):
    for typo in ("forget_rato=0.1", "+forget_rato=0.1", "method=imuu"):
        out = unlearn([typo, "logger=none"], tmp_path)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert ("did you mean forget_ratio?" if "rato" in typo else "did you mean imu?") in lines[0]
    assert not list(tmp_path.rglob("results.json")) and not (tmp_path / "outputs").exists()


def test_outside_a_terminal_progress_is_a_line_per_epoch_and_the_api_prints_nothing(
    tmp_path, capfd, monkeypatch
):
    out = unlearn(["method=ft", "recipe.epochs=2", "method.epochs=1"], tmp_path)  # pipes: no terminal
    assert out.returncode == 0, out.stderr[-2000:]
    assert "\r" not in out.stdout + out.stderr  # no bar redrawn into the log
    assert "training original: epoch 1/2" in out.stdout and "training original: epoch 2/2" in out.stdout
    assert "ft: epoch 1/1, loss" in out.stdout

    import logging

    from conftest import compose_cfg

    from unlearnbench import run

    # A Python process that has not configured logging (an in-process CLI test may have left handlers).
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    capfd.readouterr()
    run(compose_cfg(["method=ft", "recipe.epochs=2", "method.epochs=1"], tmp_path / "api"))
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""
