"""The GPU check (unlearnbench/bench/gpu_check/, run as scripts/gpu_check.py): the tiny CPU run exercises every
step, so the GPU check cannot rot unseen."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
GOAL_STATUSES = {"met", "not met", "not measured", "reported"}


@pytest.fixture(scope="module")
def gpu_check():
    from unlearnbench.bench import gpu_check

    return gpu_check


def test_tiny_run_writes_every_step_with_its_goals(tmp_path, gpu_check):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nabove\n\n{gpu_check.START}\nold figures\n{gpu_check.END}\n\nbelow\n")
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--device",
            "cpu",
            "--tiny",
            "--json",
            str(out),
            "--doc",
            str(doc),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = json.loads(out.read_text())
    assert report["tiny"] is True and report["device"] == "cpu"
    assert [s["name"] for s in report["steps"]] == [s.name for s in gpu_check.STEPS]
    for step, spec in zip(report["steps"], gpu_check.STEPS):
        assert step["status"] == "ok", f"{step['name']}: {step['error']}\n" + "\n".join(
            step.get("traceback", [])
        )
        assert step["figures"]["setup"]
        assert [g["key"] for g in step["goals"]] == [g.key for g in spec.goals]
        for goal in step["goals"]:
            assert goal["goal"] and goal["status"] in GOAL_STATUSES
            assert (goal["value"] is None) == (goal["status"] == "not measured")
    steps = {step["name"]: step for step in report["steps"]}
    runner = steps["train_cifar10"]["figures"]
    assert runner["mfu"] is None and "no bf16 dense peak" in runner["img_s_note"]
    assert runner["ratio"] == runner["img_s"] / steps["eager_loop_cifar10"]["figures"]["img_s"]
    assert (
        runner["compile_s"] is not None
    )  # the tiny run compiles (eager backend): its cost is reported apart
    projected = steps["projected_salun_seed"]["figures"]
    assert projected["seconds"] == sum(projected["parts_s"].values()) and projected["parts_s"]["salun"] > 0
    mission = steps["mission"]["figures"]
    assert 0 < mission["eval_share"] < 1 and mission["cached_eval_s"] > 0

    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nabove\n\n") and text.endswith("\n\nbelow\n")
    assert "old figures" not in text
    assert text.count(gpu_check.START) == 1 and text.count(gpu_check.END) == 1
    section = text.split(gpu_check.START)[1].split(gpu_check.END)[0]
    assert "tiny CPU run" in section
    for spec in gpu_check.STEPS:
        assert spec.title in section and f"**{spec.name}**" in section


def test_a_failing_step_is_recorded_and_the_run_goes_on(gpu_check, tmp_path):
    def broken(check):
        raise RuntimeError("no such file")

    step = gpu_check.Step(
        "broken", "A broken step", 30, broken, (gpu_check.Goal("x", "a figure", ">=", 1.0),)
    )
    check = gpu_check.Check(
        gpu_check.parse_args(["--tiny", "--device", "cpu"]), torch.device("cpu"), tmp_path
    )
    entry = gpu_check.run_step(step, check, seconds_left=100)
    assert entry["status"] == "error" and "RuntimeError: no such file" in entry["error"]
    assert entry["goals"][0]["status"] == "not measured" and entry["goals"][0]["goal"] == ">= 1"
    assert gpu_check.run_step(step, check, seconds_left=1)["status"] == "skipped"

    with pytest.raises(gpu_check.StepTimeout):
        with gpu_check.time_limit(0.05):
            time.sleep(5)


def test_goals_and_device_peaks(gpu_check):
    goal = gpu_check.Goal("ratio", "ratio", "<=", 1.5, "{:.2f}x")
    assert goal.judge({"ratio": 1.2})["status"] == "met" and goal.judge({"ratio": 1.6})["status"] == "not met"
    assert gpu_check.Goal("ok", "ok", "true").judge({"ok": False})["shown"] == "no"
    assert gpu_check.bf16_peak("NVIDIA H100 PCIe")[0] == 756
    assert gpu_check.bf16_peak("NVIDIA H100 80GB HBM3")[0] == 989
    assert gpu_check.bf16_peak("NVIDIA H200")[0] == 989
    assert gpu_check.bf16_peak("cpu")[0] is None


def test_gpu_settings_compose(gpu_check, tmp_path):
    """The overrides of the real (GPU) run are checked here, where no GPU run can check them."""
    from unlearnbench import compose
    from unlearnbench.config.core import validate

    (tmp_path / "data").mkdir()
    check = gpu_check.Check(
        gpu_check.parse_args(["--data-dir", str(tmp_path / "data"), "--device", "cpu"]),
        torch.device("cpu"),
        tmp_path,
    )
    gpu = gpu_check.SETTINGS["gpu"]
    base = check.common(tmp_path / "cache")
    cfg = compose([*base, *check.dataset("cifar"), *gpu["train"]])
    assert cfg.dataset.name == "cifar10_jpeg" and cfg.dataset.source.cache_dir == str(tmp_path / "datasets")
    cfg = compose([*base, *check.dataset("fmnist"), *gpu["accuracy"]])
    assert (
        cfg.recipe.epochs == 10 and cfg.recipe.scheduler_interval == "step" and cfg.recipe.optimizer.nesterov
    )
    cfg = compose([*base, *check.dataset("cifar"), *gpu["train"]])
    assert cfg.runtime.compile is True and cfg.recipe.batch_size == 256
    cfg = compose([*base, *check.dataset("fmnist"), *gpu_check.IMU_FAST_PATH])
    assert validate(cfg)[1].uses_feature_cache()
    cfg = compose([*base, *gpu_check.mission_overrides(check)])
    assert cfg.dataset.name == "cifar10_jpeg" and cfg.method.name == "imu" and cfg.recipe.epochs == 3
    validate(cfg)

    from unlearnbench.bench import lira as bench_lira

    cfg = bench_lira.compose_cfg(bench_lira.parse_args(gpu_check.shadow_args(check)), tmp_path, batched=True)
    assert cfg.dataset.name == "fashion_mnist" and cfg.dataset.download is False
    assert "mia_efficacy" not in cfg.eval.metrics and cfg.eval.num_shadows == 4
    args = bench_lira.parse_args(gpu_check.shadow_args(check, "small_shadows"))
    cfg = bench_lira.compose_cfg(args, tmp_path, batched=False)
    assert (cfg.model.name, list(cfg.model.hidden), cfg.method.name) == ("mlp", [512], "ga")
    assert cfg.eval.num_shadows == 16 and cfg.recipe.epochs == 1 and not cfg.eval.batched_shadows


def test_steps_left_out_keep_an_earlier_runs_entries(gpu_check, tmp_path):
    def entry(step, status, figures):
        return {
            **gpu_check.not_run(step, None),
            "status": status,
            "figures": figures,
            "goals": [g.judge(figures) for g in step.goals],
        }

    steps = {s.name: s for s in gpu_check.STEPS}
    earlier = {
        "started": "2026-11-30T17:40:05+00:00",
        "steps": [
            entry(s, "ok", {"img_s": 290_000.0, "setup": "earlier"})
            if s.name == "inference"
            else gpu_check.not_run(s, "not reached")
            for s in gpu_check.STEPS
        ],
    }
    report = {
        "started": "2026-11-30T18:30:00+00:00",
        "tiny": False,
        "device_name": "NVIDIA H200",
        "torch": "2",
        "lightning": "2",
        "total_s": 1.0,
        "budget_s": 2.0,
        "steps": [gpu_check.not_run(s, "left out by --steps") for s in gpu_check.STEPS],
    }
    gpu_check.keep_earlier(report, earlier, ["inference", "imu_stage"])
    assert all(s["status"] == "not run" for s in report["steps"])  # run now: not taken from before
    gpu_check.keep_earlier(report, earlier, ["imu_stage"])
    kept = {s["name"]: s for s in report["steps"]}
    assert kept["inference"]["goals"][0]["status"] == "met" and kept["inference"]["earlier_run"]
    assert kept["mission"]["status"] == "not run" and "earlier_run" not in kept["mission"]
    text = gpu_check.section(report, "gpu_check.json")
    assert "met, run of 2026-11-30 17:40 UTC" in text and "(`--keep`)" in text
    assert f"| {steps['mission'].title} |" in text

    # --from-json writes the same from the files, running nothing.
    (tmp_path / "now.json").write_text(json.dumps({**report, "steps": [dict(s) for s in report["steps"]]}))
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"{gpu_check.START}\n{gpu_check.END}\n")
    args = [
        "--from-json",
        str(tmp_path / "now.json"),
        "--steps",
        "mission",
        "--keep",
        str(tmp_path / "earlier.json"),
    ]
    gpu_check.main([*args, "--json", str(tmp_path / "merged.json"), "--doc", str(doc)])
    merged = {s["name"]: s for s in json.loads((tmp_path / "merged.json").read_text())["steps"]}
    assert merged["inference"]["figures"]["img_s"] == 290_000.0 and merged["mission"]["status"] == "not run"
    assert "met, run of 2026-11-30 17:40 UTC" in doc.read_text()
