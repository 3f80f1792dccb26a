"""The method contract, for every method in conf/method/: it runs end to end with its shipped defaults, touches
only the splits it declares (`needs`), and leaves a model with finite outputs. (Whether the defaults also keep
a usable model depends on the model and data: IMU's authors' L1 weight collapses small heads; see the presets.)"""

from __future__ import annotations

import math

import pytest

from unlearnbench import run
from unlearnbench.cli.usage import group_options
from unlearnbench.methods import base
from unlearnbench.methods.registry import forget_overrides

RETAIN_FREE = {"imu", "mnemonic"}  # the seed methods that must never see D_r


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("contract_cache")  # the original and Retrain train once for every method


@pytest.mark.parametrize("method", group_options("method"))
def test_every_method_runs_and_touches_only_its_declared_splits(method, make_cfg, shared_cache, monkeypatch):
    touched: set[str] = set()
    reach = base.GrantedSplits.__getattr__

    def recording(self, name):
        touched.add(name)
        return reach(self, name)  # an undeclared split still raises SplitAccessError

    monkeypatch.setattr(base.GrantedSplits, "__getattr__", recording)
    scenario = forget_overrides(method, classes="[2]")
    cfg = make_cfg(["dataset=synthetic", f"method={method}", "recipe.epochs=3", *scenario])
    cfg.paths.cache_dir = str(shared_cache / scenario[0])
    res = run(cfg)
    declared = type(base_method(cfg)).needs
    assert res["status"] == "ok", res["reason"]
    assert touched <= set(declared), (touched, declared)
    if method in RETAIN_FREE:
        assert "retain" not in declared and "retain" not in touched
    for who in (res["metrics"], res["original"]["metrics"], res["retrain"]["metrics"]):
        assert all(math.isfinite(v) for v in who.values())
        assert all(0.0 <= who[k] <= 1.0 for k in who if k.endswith("_acc"))


def base_method(cfg):
    from unlearnbench.config.core import build

    return build(cfg.method)
