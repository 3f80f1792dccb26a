"""The GPU-scale options on the CPU: evaluation in worker processes, compiled training, checkpoint interval."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.errors import ConfigError
from unlearnbench.runner import run
from unlearnbench.runtime import Runtime

FAST = ["recipe.epochs=3", "method.epochs=1"]


def per_model(res: dict) -> dict:
    return {who: res[who]["metrics"] for who in ("original", "retrain")} | {"unlearned": res["metrics"]}


def test_evaluation_in_worker_processes_gives_the_serial_values(make_cfg):
    serial = run(make_cfg(["method=ga", *FAST, "runtime.eval_workers=0"], subdir="serial"))
    pooled = run(make_cfg(["method=ga", *FAST, "runtime.eval_workers=2"], subdir="pooled"))
    assert (serial["eval_workers"], pooled["eval_workers"]) == (0, 2)
    assert per_model(pooled) == per_model(serial)


def test_cached_reference_values_are_read_back_not_recomputed(make_cfg, monkeypatch):
    first = run(make_cfg(["method=ft", *FAST], subdir="a"))
    import unlearnbench.evaluation as evaluation

    computed = []
    real = evaluation._predict_and_compute
    monkeypatch.setattr(
        evaluation, "_predict_and_compute", lambda model, *a: computed.append(model) or real(model, *a)
    )
    again = run(make_cfg(["method=ft", *FAST], subdir="a"))
    assert len(computed) == 1  # only the unlearned model: original and Retrain values come from the cache
    assert again["original"]["metrics"] == first["original"]["metrics"]


def test_compiled_training_trains_the_eager_model_and_saves_plain_weights(make_cfg):
    eager = run(make_cfg(["method=none", *FAST[:1], "eval.retrain=false"], subdir="eager"))
    compiled_cfg = make_cfg(
        [
            "method=none",
            *FAST[:1],
            "eval.retrain=false",
            "runtime.compile=true",
            "runtime.compile_backend=eager",
        ],
        subdir="compiled",
    )
    compiled = run(compiled_cfg)
    assert compiled["cache"]["original"]["compile"] == {"backend": "eager"}
    assert eager["cache"]["original"]["compile"] is None
    assert "original_compile" in compiled["time_s"]
    assert compiled["original"]["metrics"]["test_acc"] == pytest.approx(
        eager["original"]["metrics"]["test_acc"], abs=0.02
    )
    from pathlib import Path

    weights = [p for p in Path(compiled_cfg.paths.cache_dir).rglob("*.pt") if "ckpt" not in p.name]
    assert weights
    for path in weights:
        state = torch.load(path, map_location="cpu", weights_only=False)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        assert not any("_orig_mod" in key for key in state), path


def test_checkpoint_interval_is_a_fraction_of_the_epochs_and_checked():
    cpu = torch.device("cpu")
    assert Runtime(cpu).checkpoint_every(182) == 19
    assert Runtime(cpu, checkpoint_fraction=0.25).checkpoint_every(40) == 10
    assert Runtime(cpu, checkpoint_fraction=None).checkpoint_every(40) is None
    assert Runtime(cpu, checkpoint_fraction=0.1).checkpoint_every(3) == 1
    with pytest.raises(ConfigError, match="runtime.checkpoint_fraction"):
        Runtime(cpu, checkpoint_fraction=1.5)
    with pytest.raises(ConfigError, match="runtime.compile"):
        Runtime(cpu, compile="sometimes")


def test_compile_is_automatic_only_for_long_gpu_trainings():
    assert Runtime(torch.device("cpu")).compile_options(10**6) is None
    long_gpu = Runtime(torch.device("cuda"), compile_min_steps=100)
    assert long_gpu.compile_options(99) is None
    assert long_gpu.compile_options(100) == {"backend": "inductor"}
    reduce = Runtime(torch.device("cpu"), compile=True, compile_mode="reduce-overhead")
    assert reduce.compile_options(1) == {"backend": "inductor", "mode": "reduce-overhead"}
    assert Runtime(torch.device("cuda")).evaluation_workers(0) == 0
    assert Runtime(torch.device("cpu")).evaluation_workers(9) == 0
