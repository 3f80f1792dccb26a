"""Caches, crashes and inputs under faults: nothing lost, nothing trusted blindly."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unlearnbench import cli
from unlearnbench.runner import run

TINY = ["recipe.epochs=3", "method=none", "eval.retrain=false", "eval=fast"]


def original_entry(cache: Path) -> Path:
    entries = list((cache / "models").glob("original-*.pt"))
    assert len(entries) == 1
    return entries[0]


def rerun(make_cfg, overrides, name):
    cfg = make_cfg(overrides)
    cfg.paths.output_dir = cfg.paths.output_dir + name
    return run(cfg)


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_damaged_checkpoint_is_detected_moved_aside_and_rebuilt(make_cfg, tmp_path, damage):
    first = run(make_cfg(TINY))
    entry = original_entry(tmp_path / "cache")
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        entry.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    second = rerun(make_cfg, TINY, "2")
    assert not second["cache"]["original"]["hit"]  # rebuilt, not silently used
    assert list((tmp_path / "cache" / "models").glob("*.corrupt-*"))  # the damaged file is kept aside
    assert second["original"]["metrics"] == first["original"]["metrics"]


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_in_cache_is_not_executed(make_cfg, tmp_path):
    run(make_cfg(TINY))
    entry = original_entry(tmp_path / "cache")
    marker = tmp_path / "pwned"
    entry.write_bytes(pickle.dumps({"state_dict": _Payload(str(marker))}))
    # An attacker with write access could also fix the recorded checksum: loading must still refuse.
    meta = entry.with_suffix(".json")
    info = json.loads(meta.read_text())
    import hashlib

    info["sha256"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    meta.write_text(json.dumps(info))
    res = rerun(make_cfg, TINY, "2")
    assert not marker.exists()
    assert not res["cache"]["original"]["hit"]


def test_cache_and_run_files_are_readable_as_the_umask_allows(make_cfg, tmp_path):
    """The cache is meant to be shared by a lab: files get 0o666 less the umask, not mkstemp's 0o600."""
    previous = os.umask(0o022)
    try:
        run(make_cfg(TINY))
    finally:
        os.umask(previous)
    entry = original_entry(tmp_path / "cache")
    for path in (
        entry,
        entry.with_suffix(".json"),
        tmp_path / "run" / "results.json",
        tmp_path / "run" / "indices.json",
    ):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_atomic_writes_follow_a_stricter_umask(tmp_path):
    from unlearnbench.files import atomic_write_text

    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    finally:
        os.umask(previous)
    assert (tmp_path / "sub" / "a.txt").read_text() == "hello"
    assert (tmp_path / "sub" / "a.txt").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.txt"]  # no temp file left behind


def _unlearn(args, cwd):
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.Popen(
        [sys.executable, "-m", "unlearnbench.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_train_the_same_original_once(tmp_path):
    args = [
        *TINY,
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    procs = [_unlearn([*args, f"paths.log_dir={tmp_path / f'job{i}'}"], tmp_path) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    results = [json.loads(next((tmp_path / f"job{i}").rglob("results.json")).read_text()) for i in range(2)]
    assert sorted(r["cache"]["original"]["hit"] for r in results) == [False, True]
    assert results[0]["original"]["metrics"] == results[1]["original"]["metrics"]
    original_entry(tmp_path / "cache")


@pytest.mark.slow
def test_run_killed_mid_training_resumes_to_the_same_result(tmp_path):
    args = [
        "method=none",
        "eval=fast",
        "eval.retrain=false",
        "recipe.epochs=40",
        "logger=none",
        "trainer.enable_progress_bar=false",
    ]
    killed = _unlearn([*args, f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path)
    partial = tmp_path / "cache" / "partial"
    deadline = time.time() + 240
    while time.time() < deadline and not list(partial.glob("*/last.ckpt")):
        time.sleep(0.2)
    time.sleep(0.5)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert list(partial.glob("*/last.ckpt")), "training never saved a checkpoint"
    assert not list((tmp_path / "cache" / "models").glob("*.pt"))  # no half-written cache entry
    assert not list(tmp_path.rglob("results.json"))

    resumed = _unlearn([*args, f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert "resuming original training" in out
    clean = _unlearn(
        [*args, f"paths.cache_dir={tmp_path / 'clean'}", f"paths.log_dir={tmp_path / 'clean_out'}"], tmp_path
    )
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err[-2000:]
    got = json.loads(next((tmp_path / "outputs").rglob("results.json")).read_text())
    want = json.loads(next((tmp_path / "clean_out").rglob("results.json")).read_text())
    assert got["original"]["metrics"] == want["original"]["metrics"]
    assert not list(partial.glob("*/last.ckpt"))  # the checkpoint is removed once the model is cached


@pytest.mark.slow
def test_diverged_job_does_not_stop_its_sweep(tmp_path):
    proc = _unlearn(
        [
            "-m",
            "method.lr=1e30,0.001",
            "method=ga",
            "recipe.epochs=2",
            "logger=none",
            "eval=fast",
            "eval.retrain=false",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "outputs" / "multirun").rglob("results.json")]
    assert sorted(r["status"] for r in results) == ["diverged", "ok"]
    from unlearnbench.report.cli import main as report_main

    sweep = next((tmp_path / "outputs" / "multirun").iterdir())
    assert report_main([str(sweep)]) == 0
    assert "diverged" in (sweep / "report.md").read_text()


def test_identical_cpu_runs_give_identical_metrics(make_cfg):
    overrides = ["method=ft", "method.epochs=2", "recipe.epochs=3"]
    a = run(make_cfg(overrides, subdir="a"))
    b = run(make_cfg(overrides, subdir="b"))
    assert not b["cache"]["original"]["hit"]  # separate caches: both trained
    assert a["metrics"] == b["metrics"] and a["original"]["metrics"] == b["original"]["metrics"]
    assert a["env"]["deterministic_algorithms"] is True


# (overrides, words the one-line message must contain)
BAD_INPUTS = [
    (["method=nope"], ["method=nope", "ga"]),
    (["dataset=imagenet"], ["dataset=imagenet", "cifar10"]),
    (["model=vit"], ["model=vit", "resnet18"]),
    (["forget=half"], ["forget=half", "random"]),
    (["eval=extreme"], ["eval=extreme", "standard"]),
    (["trainer=tpu"], ["trainer=tpu", "cpu"]),
    (["logger=mlflow"], ["logger=mlflow", "wandb"]),
    (["forget_ratio=1.5"], ["forget_ratio", "1.5", "(0.0, 1.0)"]),
    (["forget_ratio=0"], ["forget_ratio", "(0.0, 1.0)"]),
    (["forget_ratio=-0.1"], ["forget_ratio", "(0.0, 1.0)"]),
    (["forget_ratio=abc"], ["forget_ratio", "abc"]),
    (["seed=-1"], ["seed", "-1", "non-negative integer"]),
    (["seed=1.5"], ["seed", "1.5", "non-negative integer"]),
    (["forget=class", "forget.classes=[12]"], ["forget.classes", "0..9"]),
    (["forget=class", "forget.classes=[-1]"], ["forget.classes", "0..9"]),
    (["forget=subclass"], ["forget", "subclass", "cifar100"]),
    (["forget=superclass"], ["forget", "superclass", "cifar100"]),
    (["method=mnemonic"], ["forget", "random", "class"]),
    (["dataset.val_fraction=1.5"], ["dataset.val_fraction", "1.5"]),
    (["dataset.val_source=dev"], ["dataset.val_source", "dev", "train or test"]),
    (["method=iu", "method.alpha=-1"], ["method.alpha", "-1"]),
    (["recipe.epochs=0"], ["recipe.epochs", "positive integer"]),
    (["recipe.batch_size=-4"], ["recipe.batch_size", "positive integer"]),
    (["dataset.train_subset=5"], ["dataset.train_subset", "5", ">= 10"]),
    (["recipe.epochs=0"], ["recipe.epochs", "positive integer"]),
    (["recipe.batch_size=-4"], ["recipe.batch_size", "positive integer"]),
    (["+method.learning_rate=0.1"], ["method.learning_rate", "lr"]),
    (["method.lr=-1"], ["method.lr", "-1", "> 0"]),
    (["method.lr=fast"], ["method.lr", "fast", "a number"]),
    (["method.epochs=0"], ["method.epochs", ">= 1"]),
    (["method.epochs=abc"], ["method.epochs", "abc", "integer"]),
    (["method.momentum=1.5"], ["method.momentum", "[0, 1)"]),
    (["method.augment=3"], ["method.augment", "true or false"]),
    (["method=imu", "method.update_scope=head"], ["update_scope", "head", "fc"]),
    (["method=imu", "method.bn_mode=frozen"], ["bn_mode", "frozen", "train"]),
    (["method=imu", "method.top_data=2"], ["method.top_data", "2"]),
    (["method=gradtau", "method.bn_mode=x"], ["bn_mode", "eval"]),
    (["method=salun", "method.mask_fraction=1.5"], ["mask_fraction", "1.5"]),
    (["trainer=gpu"], ["trainer", "gpu", "cpu"])
    if not __import__("torch").cuda.is_available()
    else (["trainer=cpu", "seed=-2"], ["seed"]),
    (["eval.metrics.mia_efficacy.feature=foo"], ["feature", "foo", "confidence"]),
    (["eval=full", "eval.batched_shadows=maybe"], ["eval.batched_shadows", "maybe", "true or false"]),
    (["foo=1"], ["foo"]),
    (
        ["dataset=cifar10", "dataset.download=false", "paths.data_dir=nowhere"],
        ["dataset=cifar10", "nowhere", "dataset.download=false", "cifar10_jpeg"],
    ),
]


def _message(check, *args, **kwargs) -> str:
    from unlearnbench.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_validators_name_the_key_the_bad_value_and_what_is_allowed():
    from unlearnbench.config.checks import check_choice, check_int, check_number

    assert (
        _message(check_number, "method.lr", -1, 0, low_open=True)
        == "method.lr=-1 is not allowed; allowed: a number > 0"
    )
    assert _message(check_number, "method.momentum", 1.0, 0, 1, high_open=True).endswith("a number in [0, 1)")
    assert _message(check_number, "method.beta", True, 0, 1).startswith("method.beta=True")  # bool: no number
    assert _message(check_number, "method.alpha0", "x", 0, 1, allow_none=True, hint="null: a rule").endswith(
        "allowed: null or a number in [0, 1] (null: a rule)"
    )
    assert check_number("method.alpha0", None, 0, 1, allow_none=True) is None
    assert check_number("forget_ratio", 0.5, 0.0, 1.0, low_open=True, high_open=True) == 0.5
    assert _message(check_int, "recipe.epochs", 0, 1).endswith("allowed: a positive integer (>= 1)")
    assert _message(check_int, "seed", -1, 0).endswith("allowed: a non-negative integer (>= 0)")
    assert _message(check_int, "method.epochs", 2.0, 1).startswith("method.epochs=2.0")  # float: no integer
    assert _message(check_int, "eval.metrics.lira.num_shadows", 1, 2).endswith("allowed: an integer >= 2")
    assert _message(check_int, "forget.superclass", 20, 0, 19, hint="a coarse class").endswith(
        "allowed: an integer in [0, 19] (a coarse class)"
    )
    assert (
        _message(check_choice, "method.bn_mode", "frozen", ("train", "eval"))
        == "method.bn_mode='frozen' is not allowed; allowed: train, eval"
    )


@pytest.mark.parametrize(("args", "words"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_through_the_cli(args, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["unlearn", *args, "logger=none", "trainer.enable_progress_bar=false"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("unlearn: error:"), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in err
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("results.json"))


def test_hydra_full_error_keeps_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(sys, "argv", ["unlearn", "forget_ratio=1.5"])
    from unlearnbench.errors import ConfigError

    with pytest.raises(ConfigError, match="forget_ratio"):
        cli.main()
