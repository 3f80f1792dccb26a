"""The GPU code paths (bf16 autocast, channels_last) run on the CPU too, so CI catches dtype and layout bugs
before a GPU does: every method end to end on synthetic data, metrics finite and in range."""

from __future__ import annotations

import math

import pytest

from unlearnbench import run
from unlearnbench.cli.usage import group_options
from unlearnbench.methods.registry import forget_overrides

pytestmark = pytest.mark.slow  # CLI sweeps and many runs: in CI's slow step (README, Development)

GPU_PATHS = ["trainer.precision=bf16-mixed", "runtime.channels_last=true"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bf16_cache")  # original and Retrain trained once for all methods


@pytest.mark.parametrize("method", group_options("method"))
def test_every_method_runs_under_cpu_bf16_autocast_and_channels_last(method, make_cfg, shared_cache):
    scenario = forget_overrides(method, classes="[1]")
    cfg = make_cfg(["dataset=synthetic", f"method={method}", "recipe.epochs=2", *scenario, *GPU_PATHS])
    cfg.paths.cache_dir = str(shared_cache / scenario[0])
    res = run(cfg)
    assert res["env"]["precision"] == "bf16-mixed" and res["status"] == "ok", res.get("reason")
    for who in (res["metrics"], res["original"]["metrics"], res["retrain"]["metrics"]):
        for name, value in who.items():
            assert math.isfinite(value) and 0.0 <= value <= 1.0, (name, value)
    assert res["original"]["metrics"]["test_acc"] > 0.2  # bf16 training still learns (chance: 0.1)
