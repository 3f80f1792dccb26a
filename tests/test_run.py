"""End-to-end runs through `run(cfg)` on the embedded and synthetic data (and the shared CIFAR-10 when present)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SHARED_DATA

from unlearnbench.data.batches import Augment
from unlearnbench.data.splits import Split, Splits
from unlearnbench.methods.base import GrantedSplits, Method, SplitAccessError, UnlearnContext, derive_seed
from unlearnbench.runner import run
from unlearnbench.runtime import Runtime

FAST = ["recipe.epochs=3", "method.epochs=1"]
REQUIRED = (
    "method",
    "dataset",
    "model",
    "seed",
    "forget",
    "metrics",
    "original",
    "retrain",
    "gap",
    "time_s",
    "cache",
    "env",
)


def test_digits_end_to_end_writes_every_field(make_cfg, tmp_path):
    res = run(make_cfg(["method=ft", *FAST]))
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["metrics"] == res["metrics"]
    for key in REQUIRED:
        assert key in on_disk, key
    for who in (res["metrics"], res["original"]["metrics"], res["retrain"]["metrics"]):
        for name in ("forget_acc", "retain_acc", "val_acc", "test_acc", "mia_efficacy"):
            assert 0.0 <= who[name] <= 1.0, name
    assert res["gap"]["forget_acc"] == pytest.approx(
        res["metrics"]["forget_acc"] - res["retrain"]["metrics"]["forget_acc"]
    )
    assert set(res["time_s"]) == {"original", "retrain", "unlearn", "eval", "total"}
    assert res["forget"] == {
        "scenario": "random",
        "ratio": 0.1,
        "classes": None,
        "size": res["forget"]["size"],
        "fraction_of_train": pytest.approx(0.1, abs=0.002),
    }
    assert res["original"]["metrics"]["test_acc"] > 0.5  # the original model learned something


def test_saved_indices_are_disjoint_and_cover_train(make_cfg, tmp_path):
    run(make_cfg(["method=none", *FAST[:1]]))
    idx = json.loads((tmp_path / "run" / "indices.json").read_text())
    forget, retain, val = set(idx["forget"]), set(idx["retain"]), set(idx["val"])
    assert not (forget & retain) and not (forget & val) and not (retain & val)
    assert forget | retain == set(idx["train"])


def test_synthetic_end_to_end(make_cfg):
    res = run(make_cfg(["dataset=synthetic", "method=ga", "forget_ratio=0.2", *FAST]))
    assert res["dataset"] == "synthetic" and res["forget"]["size"] == pytest.approx(0.2 * 540, abs=1)


def test_second_run_hits_cache(make_cfg):
    first = run(make_cfg(["method=ga", *FAST], subdir="a"))
    cfg = make_cfg(["method=ft", *FAST], subdir="a")
    cfg.paths.output_dir = cfg.paths.output_dir + "2"
    second = run(cfg)
    assert not first["cache"]["original"]["hit"] and not first["cache"]["retrain"]["hit"]
    assert second["cache"]["original"]["hit"] and second["cache"]["retrain"]["hit"]
    assert second["cache"]["original"]["key"] == first["cache"]["original"]["key"]
    assert second["original"]["metrics"] == first["original"]["metrics"]
    assert second["cache"]["original"]["seconds_this_run"] < first["cache"]["original"]["seconds_this_run"]


def test_retrain_method_reuses_retrain_reference(make_cfg):
    res = run(make_cfg(["method=retrain", *FAST[:1]]))
    assert res["cache"]["retrain"]["hit"]  # the reference trained first; the method then loaded it
    assert res["gap"]["forget_acc"] == 0.0 and res["gap"]["test_acc"] == 0.0


def test_class_scenario_reports_remaining_and_forgotten_test_accuracy(make_cfg):
    res = run(make_cfg(["method=none", "forget=class", "forget.classes=[3]", *FAST[:1]]))
    assert res["forget"]["classes"] == [3]
    assert "test_forget_acc" in res["metrics"]
    assert res["retrain"]["metrics"]["forget_acc"] < 0.2  # Retrain never saw class 3
    assert res["sizes"]["test_forget"] > 0


def test_none_returns_the_original(make_cfg):
    res = run(make_cfg(["method=none", *FAST[:1]]))
    assert {k: res["metrics"][k] for k in res["original"]["metrics"]} == res["original"]["metrics"]


def _splits() -> Splits:
    def split(name, n):
        return Split(
            name,
            torch.zeros(n, 1, 2, 2, dtype=torch.uint8),
            torch.zeros(n, dtype=torch.long),
            torch.arange(n),
        )

    s = {name: split(name, 4) for name in ("train", "forget", "retain", "val", "test")}
    return Splits(num_classes=2, **s)


def test_granted_splits_only_expose_declared_ones():
    granted = GrantedSplits(_splits(), frozenset({"forget"}), "demo")
    assert len(granted.forget) == 4
    with pytest.raises(SplitAccessError, match="retain"):
        granted.retain  # noqa: B018
    with pytest.raises(SplitAccessError, match="test"):
        granted.test  # noqa: B018


class SneakyMethod(Method):
    """Declares only the forget set, then reaches for the retain set."""

    needs = frozenset({"forget"})

    def unlearn(self, model, data, ctx):
        _ = data.retain
        return model


def test_method_touching_undeclared_split_fails_the_run(make_cfg, tmp_path):
    cfg = make_cfg(["method=none", *FAST[:1]])
    cfg.method._target_ = f"{__name__}.SneakyMethod"
    with pytest.raises(SplitAccessError):
        run(cfg)
    assert not (tmp_path / "run" / "results.json").exists()


def test_divergent_method_is_marked_diverged(make_cfg, tmp_path):
    res = run(make_cfg(["method=ga", "method.lr=1e30", *FAST[:1]]))
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["status"] == "diverged" and "non-finite" in on_disk["reason"]
    assert all(v is None for v in on_disk["metrics"].values())
    assert on_disk["original"]["metrics"]["test_acc"] > 0.5  # the references are still evaluated
    assert res["gap"] == {}


def test_dataloader_path_gives_the_same_model_as_device_resident_batches(make_cfg):
    overrides = ["dataset=synthetic", "method=ft", *FAST]
    resident = run(make_cfg([*overrides, "runtime.data_on_device=true"], subdir="resident"))
    streamed = run(
        make_cfg([*overrides, "runtime.data_on_device=false", "runtime.num_workers=0"], subdir="streamed")
    )
    assert resident["env"]["data_on_device"] and not streamed["env"]["data_on_device"]
    assert streamed["metrics"] == resident["metrics"]


def test_run_compose_works_in_a_plain_python_process(tmp_path):
    """The library entry needs no Hydra app: compose + run in a fresh interpreter, nothing printed."""
    import subprocess
    import sys

    code = (
        "from unlearnbench import compose, run\n"
        f"cfg = compose(['method=imu', 'dataset=digits', 'recipe.epochs=1', 'method.epochs=1', 'eval=fast',"
        f" 'logger=none', 'trainer.enable_progress_bar=false', 'paths.root_dir={tmp_path}'])\n"
        "res = run(cfg)\n"
        "assert res['status'] == 'ok' and 0 <= res['metrics']['forget_acc'] <= 1\n"
        "import pathlib; assert (pathlib.Path(cfg.paths.output_dir) / 'results.json').is_file()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "forget_acc" not in out.stdout  # run() returns the results; the table is the CLI's
    assert list((tmp_path / "outputs" / "runs" / "digits" / "imu").rglob("results.json"))


def test_method_diagnostics_reach_the_csv_log(make_cfg, tmp_path):
    cfg = make_cfg(["method=fisher", *FAST[:1], "eval=fast", "logger=csv"], tiny=False)
    cfg.trainer.enable_progress_bar = False
    run(cfg)
    logged = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    assert "method/fisher/clamped_fraction" in logged[0].split(",")
    column = logged[0].split(",").index("method/fisher/clamped_fraction")
    values = [float(row.split(",")[column]) for row in logged[1:] if row.split(",")[column]]
    assert len(values) == 1 and 0.0 <= values[0] <= 1.0


def test_retrain_cost_is_its_training_time_also_when_cached(make_cfg):
    first = run(make_cfg(["method=none", *FAST[:1]]))
    cfg = make_cfg(["method=none", *FAST[:1]])
    cfg.paths.output_dir += "2"
    second = run(cfg)
    assert second["cache"]["retrain"]["hit"] and not first["cache"]["retrain"]["hit"]
    cost = first["time_s"]["retrain"]
    assert cost == first["cache"]["retrain"]["train_seconds"] > 0.05  # seconds of training, not a load
    assert second["time_s"]["retrain"] == cost  # the cached model reports what it cost to train
    assert second["cache"]["retrain"]["seconds_this_run"] < cost
    assert second["cache"]["retrain"]["train_device"] == "cpu"


CIFAR10_JPEG = SHARED_DATA / "cifar10-jpeg.tar.gz"


@pytest.mark.skipif(
    not CIFAR10_JPEG.is_file(),
    reason=f"CIFAR-10 JPEG archive not found at {CIFAR10_JPEG} (the shared data folder is absent)",
)
def test_memorise_cifar10_preset_runs_end_to_end(make_cfg, decoded_cifar10_jpeg):
    cfg = make_cfg(
        [
            "experiment=memorise_cifar10",
            "debug=fast",
            "eval.retrain=true",
            "method=none",
            "dataset.train_subset=500",
        ]
    )
    cfg.paths.data_dir = str(SHARED_DATA)
    res = run(cfg)
    assert (res["dataset"], res["model"]) == ("cifar10_jpeg", "mlp_relu")
    assert res["sizes"]["forget"] == 45 and res["sizes"]["test"] == 200  # debug=fast keeps 200 test images
    assert res["retrain"] is not None


def test_a_long_training_announces_its_duration_before_it_runs_long(make_cfg, monkeypatch, caplog):
    from unlearnbench.training import lightning

    monkeypatch.setattr(lightning, "LONG_TRAINING_S", 0.0)  # every training counts as long here
    with caplog.at_level("WARNING", logger="unlearnbench.training.lightning"):
        run(make_cfg(["method=none", "recipe.epochs=3", "eval=fast"]))
    lines = [r.getMessage() for r in caplog.records if r.name == "unlearnbench.training.lightning"]
    assert any(
        line.startswith("original: ~")
        and "on cpu (3 epochs)" in line
        and "trainer=gpu on a GPU machine" in line
        for line in lines
    ), lines


def test_random_streams_are_named_independent_and_deterministic():
    ctx = UnlearnContext(
        runtime=Runtime(torch.device("cpu"), progress=False),
        seed=0,
        num_classes=2,
        forget_ratio=0.5,
        forget_classes=None,
        augment=Augment(),
    )
    assert ctx.seed_for("retain") == ctx.seed_for("retain") == derive_seed(0, "retain")
    seeds = {
        ctx.seed_for("forget"),
        ctx.seed_for("retain"),
        ctx.seed_for("influence", 0),
        ctx.seed_for("influence", 1),
        derive_seed(1, "forget"),
    }
    assert len(seeds) == 5 and all(0 <= s < 2**63 for s in seeds)
    split = Split("forget", torch.zeros(32, 1, 1, 1, dtype=torch.uint8), torch.arange(32), torch.arange(32))

    def order(**stream) -> list[int]:
        return torch.cat([y for _, y in ctx.batches(split, 8, shuffle=True, **stream)]).tolist()

    assert order() == order() == order(stream="forget")  # the default stream is the split's name
    assert order(stream=("train", 0)) != order(stream="forget")
    assert sorted(order(stream="x")) == list(range(32))


def test_reference_metrics_are_computed_once_per_model_and_reused(make_cfg, monkeypatch):
    from unlearnbench import evaluation

    first = run(make_cfg(["method=ga", *FAST]))
    calls = []
    original_predict = evaluation.predict

    def counting(model, split, runtime):
        calls.append(split.name)
        return original_predict(model, split, runtime)

    monkeypatch.setattr(evaluation, "predict", counting)
    cfg = make_cfg(["method=ft", *FAST])
    cfg.paths.output_dir += "2"
    second = run(cfg)
    assert second["original"]["metrics"] == first["original"]["metrics"]
    assert second["retrain"]["metrics"] == first["retrain"]["metrics"]
    assert len(calls) == len(second["sizes"])  # only the unlearned model was evaluated again


def test_a_methods_time_leaves_out_the_import_of_torch_dynamo(tmp_path):
    """torch.optim's first optimiser imports torch._dynamo (~1.5 s on a CPU): it is imported before a method's
    clock starts, so a method's time does not depend on whether it ran first in its process (SGD or Adam)."""
    import subprocess
    import sys

    def run_in_a_new_process(method: str) -> str:
        overrides = [
            f"method={method}",
            "debug=fast",
            "eval.retrain=false",
            "logger=none",
            "trainer.enable_progress_bar=false",
            f"paths.root_dir={tmp_path}",
        ]
        code = (
            "import sys\nfrom unlearnbench import compose, run\n"
            f"cfg = compose({overrides!r})\nfrom unlearnbench.config.core import validate\n"
            "method_type = type(validate(cfg)[1])\nseen = []\nplain = method_type.unlearn\n"
            "method_type.unlearn = lambda *a: (seen.append('torch._dynamo' in sys.modules), plain(*a))[1]\n"
            "assert run(cfg)['status'] == 'ok'\n"
            "print('dynamo imported before timing:', seen, 'at the end:', 'torch._dynamo' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    run_in_a_new_process("ga")  # trains the original (Lightning imports torch._dynamo): fills the cache
    assert "dynamo imported before timing: [True]" in run_in_a_new_process("ga")  # cached: nothing trains
    assert "dynamo imported before timing: [True]" in run_in_a_new_process("bad_teacher")
