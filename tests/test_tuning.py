"""Fair tuning: a search space for every method with hyperparameters, and an objective blind to the test set."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from test_sweeps import results_under, unlearn

from unlearnbench.cli.usage import group_options
from unlearnbench.evaluation import SplitOutputs
from unlearnbench.methods.registry import method_classes, tunable
from unlearnbench.metrics.avg_gap import AvgGap
from unlearnbench.metrics.mia_efficacy import MIAEfficacy

# A method has hyperparameters when its constructor takes any (none and retrain take none).
TUNED = sorted(name for name, cls in method_classes().items() if inspect.signature(cls).parameters)


def test_every_method_with_hyperparameters_has_a_search_space():
    assert set(group_options("hparams_search")) == set(TUNED) == set(tunable())
    assert "none" not in TUNED and "retrain" not in TUNED and "imu" in TUNED


@pytest.mark.slow
@pytest.mark.parametrize("method", TUNED)
def test_one_trial_of_each_search_space_runs_on_digits(method, tmp_path):
    out = unlearn(
        ["-m", f"hparams_search={method}", "hydra.sweeper.n_trials=1", "debug=fast", "eval=standard"],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (result,) = results_under(tmp_path / "outputs" / "multirun").values()
    assert result["method"] == method and result["status"] == "ok"
    assert result["config"]["optimize_metric"] == "tune_gap" and result["metrics"]["tune_gap"] is not None
    from omegaconf import OmegaConf

    best = OmegaConf.load(next((tmp_path / "outputs" / "multirun").iterdir()) / "optimization_results.yaml")
    assert best.best_value == pytest.approx(result["metrics"]["tune_gap"])  # the study minimised tune_gap


def _outputs(gen: torch.Generator) -> dict[str, SplitOutputs]:
    def split(n: int, shift: float) -> SplitOutputs:
        labels = torch.randint(0, 4, (n,), generator=gen)
        logits = torch.randn(n, 4, generator=gen) + shift * torch.nn.functional.one_hot(labels, 4)
        return SplitOutputs(logits, labels)

    return {
        "forget": split(60, 3.0),
        "retain": split(200, 3.0),
        "val": split(80, 1.0),
        "test": split(120, 1.0),
    }


def test_the_tuning_objective_never_reads_the_test_split():
    metrics = [MIAEfficacy(), MIAEfficacy(nonmembers="val")]
    tune_gap = AvgGap(components=["forget_acc", "retain_acc", "val_acc", "mia_efficacy_val"], key="tune_gap")

    def objective(unlearned: dict, retrain: dict) -> float:
        from unlearnbench.metrics.accuracy import Accuracy

        values = {}
        for who, outputs in (("unlearned", unlearned), ("retrain", retrain)):
            values[who] = Accuracy().per_model(outputs)
            for metric in metrics:
                values[who] |= metric.per_model(outputs)
        return tune_gap.compare(values["unlearned"], values["retrain"])["tune_gap"]

    unlearned, retrain = (
        _outputs(torch.Generator().manual_seed(0)),
        _outputs(torch.Generator().manual_seed(1)),
    )
    before = objective(unlearned, retrain)
    for outputs in (unlearned, retrain):  # perturb every test label and logit
        test = outputs["test"]
        outputs["test"] = SplitOutputs(-test.logits, (test.labels + 1) % 4)
    assert objective(unlearned, retrain) == before
    assert 0.0 < before < 1.0


def test_the_reported_avg_gap_still_uses_the_test_split(make_cfg):
    from unlearnbench import run

    res = run(make_cfg(["method=ga", "recipe.epochs=2"]))
    info = res["metric_info"]
    assert info["avg_gap"]["components"] == ["forget_acc", "retain_acc", "test_acc", "mia_efficacy"]
    assert info["tune_gap"]["components"] == ["forget_acc", "retain_acc", "val_acc", "mia_efficacy_val"]
    assert res["metrics"]["tune_gap"] != res["metrics"]["avg_gap"]
    assert json.loads(json.dumps(res))["metrics"]["mia_efficacy_val"] is not None


# ----------------------------------------------------------------------------- the coarse pass


def test_every_search_space_declares_a_strength_axis_it_searches():
    from unlearnbench.sweeps.tuning import search_space, strength_axis

    for method in TUNED:
        axis = strength_axis(method)
        assert axis.key in search_space(method)["hydra"]["sweeper"]["params"], method
        assert 0 < axis.low < axis.high, method


def test_the_coarse_pass_spans_the_range_and_tpe_searches_around_its_best():
    from unlearnbench.sweeps.tuning import Axis, choose

    lr = Axis("method.lr", 1e-6, 1e-2, log=True)
    assert lr.coarse(5) == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
    assert lr.narrowed(1e-3, 5) == "method.lr=tag(log, interval(0.0001, 0.01))"
    assert (
        lr.narrowed(1e-2, 5) == "method.lr=tag(log, interval(0.001, 0.01))"
    )  # clipped to the declared range
    linear = Axis("method.gamma", 0.5, 1.0, log=False)
    assert (
        linear.coarse(3) == [0.5, 0.75, 1.0] and linear.narrowed(0.5, 3) == "method.gamma=interval(0.5, 0.75)"
    )
    # A study that stayed where the method does nothing loses to the coarse point that forgets.
    tpe = {"params": {"method.lr": 2e-6, "method.epochs": 3}, "value": 0.45}
    coarse = {"value": 1e-3, "tune_gap": 0.05, "forget_acc": 0.5}
    assert choose(coarse, tpe, "method.lr") == {
        "params": {"method.lr": 1e-3},
        "value": 0.05,
        "pass": "coarse",
    }
    assert choose(None, tpe, "method.lr")["pass"] == "TPE"


def test_a_smoke_tuning_gets_its_own_sweeps():
    from unlearnbench.sweeps.tuning import sweep_name

    assert sweep_name("memorise_cifar10", "ga", "tpe", []) == "tune_memorise_cifar10_ga"
    assert sweep_name("memorise_cifar10", "ga", "coarse", []) == "tune_memorise_cifar10_ga_coarse"
    smoke = sweep_name("memorise_cifar10", "ga", "tpe", ["recipe.epochs=1"])
    assert smoke.startswith("tune_memorise_cifar10_ga_") and smoke != "tune_memorise_cifar10_ga"


@pytest.mark.slow
def test_tune_script_runs_both_passes_on_digits(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "scripts/tune.py", "--setting", "digits_smoke", "--methods", "ga", "--trials", "1"]
        + ["--coarse", "2", "--out", str(tmp_path), f"paths.cache_dir={tmp_path / 'cache'}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    preset = (tmp_path / "digits_smoke" / "ga.yaml").read_text()
    assert "coarse pass over method.lr: 1e-06: forget" in preset and "\nlr: " in preset


def test_a_presets_curve_reads_back_as_written(tmp_path):
    from unlearnbench.sweeps.tuning import _curve, read_curve

    coarse = [
        {"value": 1e-4, "forget_acc": 1.0, "tune_gap": 0.3067},
        {"value": 1e-3, "forget_acc": None, "tune_gap": None},  # a failed run
        {"value": 1e-2, "forget_acc": 0.076, "tune_gap": 0.5623},
    ]
    preset = tmp_path / "ga.yaml"
    preset.write_text(f"# header\n# {_curve({'axis': 'method.lr', 'coarse': coarse})}\nlr: 0.01\n")
    assert read_curve(preset) == [(1e-4, 1.0, 0.3067), (1e-2, 0.076, 0.5623)]
    untuned = tmp_path / "ft.yaml"
    untuned.write_text("lr: 0.01\n")
    assert read_curve(untuned) is None
