"""eval=deep: linear-probe recovery, CKA representation similarity and the relearning attack, on synthetic
features with known answers, on small models, and end to end on digits (and memorise_cifar10, slow)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from torch import nn

from unlearnbench.cli.console import format_table
from unlearnbench.data.splits import Split
from unlearnbench.errors import ConfigError, UserError
from unlearnbench.evaluation import SplitOutputs, predict
from unlearnbench.metrics.cka import RepresentationSimilarity, linear_cka, position
from unlearnbench.metrics.linear_probe import LinearProbe, probe_accuracy
from unlearnbench.metrics.relearn import RelearnAttack, attacker_split
from unlearnbench.models.small import MLP, SmallCNN
from unlearnbench.runner import run
from unlearnbench.runtime import Runtime

NEW_KEYS = (
    "probe_forget_acc",
    "cka_position_forget",
    "cka_retrain_forget",
    "cka_original_forget",
    "cka_position_test",
    "relearn_forget_acc",
)
CPU = Runtime(torch.device("cpu"), progress=False)
CIFAR10_JPEG = SHARED_DATA / "cifar10-jpeg.tar.gz"


# ----------------------------------------------------------------------------- CKA


def test_cka_of_a_representation_with_itself_a_rotation_and_a_scaling_is_one():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 16, generator=gen) @ torch.randn(16, 16, generator=gen)  # correlated units
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=gen))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ rotation) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 3.0 * x + 5.0) == pytest.approx(1.0, abs=1e-10)  # scaled and shifted
    # a non-isotropic stretch of the same units is a different geometry: below 1
    assert linear_cka(x, x * torch.linspace(0.1, 10, 16)) < 0.95


def test_cka_of_unrelated_features_is_low_and_both_formulas_agree():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(2000, 8, generator=gen), torch.randn(2000, 8, generator=gen)
    assert linear_cka(x, y) < 0.05
    few_x, few_y = x[:6], x[:6] @ torch.randn(8, 8, generator=gen)  # n < d: the Gram-matrix form
    gram = linear_cka(few_x, few_y)
    x64, y64 = few_x.double() - few_x.double().mean(0), few_y.double() - few_y.double().mean(0)
    features = (
        torch.linalg.norm(y64.T @ x64) ** 2
        / (torch.linalg.norm(x64.T @ x64) * torch.linalg.norm(y64.T @ y64))
    ).item()
    assert gram == pytest.approx(features, rel=1e-9)
    assert linear_cka(torch.ones(10, 4), x[:10]) == 0.0  # a constant representation
    with pytest.raises(ValueError, match="same n samples"):
        linear_cka(x, y[:10])


def test_cka_position_is_zero_at_retrain_one_at_the_original_and_between_otherwise():
    gen = torch.Generator().manual_seed(2)
    retrain, original = torch.randn(200, 6, generator=gen), torch.randn(200, 6, generator=gen)
    halfway = (retrain / retrain.norm() + original / original.norm()) * 10
    outs = {
        who: {"forget": SplitOutputs(torch.zeros(200, 2), torch.zeros(200, dtype=torch.long), f)}
        for who, f in (("retrain", retrain), ("original", original), ("unlearned", halfway))
    }
    values = RepresentationSimilarity(splits=["forget"]).between_models(outs)
    assert values["retrain"]["cka_position_forget"] == 0.0 and values["retrain"]["cka_retrain_forget"] == 1.0
    assert values["original"]["cka_position_forget"] == 1.0
    assert 0.2 < values["unlearned"]["cka_position_forget"] < 0.8
    assert position(0.9, 0.9) == pytest.approx(0.5) and position(1.0, 1.0) is None
    # without Retrain only the similarity with the original is reported
    no_retrain = RepresentationSimilarity(splits=["forget"]).between_models(
        {k: v for k, v in outs.items() if k != "retrain"}
    )
    assert set(no_retrain["unlearned"]) == {"cka_original_forget"}


# ----------------------------------------------------------------------------- linear probe


def blobs(n: int, classes: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, 32)) * 10
    return (centres[y] + spread * rng.normal(size=(n, 32))).astype(np.float32), y


def test_a_probe_on_separable_features_is_exact_and_on_noise_near_chance():
    x, y = blobs(400, 4, 1.0, 0)
    assert probe_accuracy(x[:300], y[:300], x[300:], y[300:]) == 1.0
    noise = np.random.default_rng(1).normal(size=(400, 32))
    assert probe_accuracy(noise[:300], y[:300], noise[300:], y[300:]) < 0.45  # chance: 0.25


def test_the_probe_fits_on_the_named_splits_not_on_the_forget_set():
    x, y = blobs(300, 3, 1.0, 0)

    def out(a, b):
        return SplitOutputs(torch.zeros(len(b), 3), torch.from_numpy(b).long(), torch.from_numpy(a))

    metric = LinearProbe(fit_on=["retain", "test"], max_fit_samples=150)
    outputs = {
        "forget": out(x[:50], y[:50]),
        "retain": out(x[50:200], y[50:200]),
        "test": out(x[200:], y[200:]),
    }
    assert metric.per_model(outputs) == {"probe_forget_acc": 1.0}
    fit_x, fit_y = metric.fit_set(outputs)
    assert len(fit_y) == 150 and not any((fit_x == row).all(axis=1).any() for row in x[:50])
    # the forget set's own labels never reach the probe: scrambled features there score low
    outputs["forget"] = out(np.random.default_rng(3).normal(size=(50, 32)).astype(np.float32) * 10, y[:50])
    assert metric.per_model(outputs)["probe_forget_acc"] < 0.7


@pytest.mark.parametrize(
    ("make", "key", "allowed"),
    [
        (
            lambda: LinearProbe(fit_on=["forget"]),
            "eval.metrics.linear_probe.fit_on",
            "retain, val, test, test_forget",
        ),
        (lambda: LinearProbe(max_fit_samples=1), "eval.metrics.linear_probe.max_fit_samples", ">= 2"),
        (lambda: RepresentationSimilarity(splits=["tset"]), "eval.metrics.cka.splits", "forget, test"),
        (lambda: RelearnAttack(steps=-1), "eval.metrics.relearn.steps", "non-negative"),
        (lambda: RelearnAttack(forget_fraction=1.0), "eval.metrics.relearn.forget_fraction", "(0.0, 1.0)"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(make, key, allowed):
    with pytest.raises(ConfigError) as err:
        make()
    message = str(err.value)
    assert key in message and allowed in message and "\n" not in message


# ----------------------------------------------------------------------------- relearning attack


def toy_split(name: str, n: int, label_of, seed: int) -> Split:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 4, 4), generator=gen, dtype=torch.uint8)
    y = label_of(x)
    return Split(name, x, y, torch.arange(n))


def test_relearning_fine_tunes_a_copy_and_leaves_the_model_as_it_was():
    def by_brightness(x):
        return (x.float().mean(dim=(1, 2, 3)) > 127.5).long()

    forget, retain = toy_split("forget", 60, by_brightness, 0), toy_split("retain", 200, by_brightness, 1)
    model = SmallCNN(
        num_classes=2, in_channels=1, mean=[0.5], std=[0.25], width=4
    ).eval()  # batch norm buffers
    before = copy.deepcopy(model.state_dict())
    ctx = SimpleNamespace(
        models={"unlearned": model, "retrain": None},
        splits=SimpleNamespace(forget=forget, retain=retain),
        runtime=CPU,
    )
    metric = RelearnAttack(steps=200, lr=0.1, forget_fraction=0.2)
    values = metric.with_models(ctx)
    assert set(values) == {"unlearned"}  # an absent model is skipped
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    given, held_out = attacker_split(forget, 0.2, 0)
    assert (len(given), len(held_out)) == (12, 48) and not set(given.indices.tolist()) & set(
        held_out.indices.tolist()
    )
    start = predict(model, held_out, CPU)
    start_acc = float((start.logits.argmax(1) == start.labels).float().mean())
    assert values["unlearned"]["relearn_forget_acc"] > max(start_acc, 0.8)  # the copy did learn
    assert metric.with_models(ctx) == values  # the same draws every time
    with pytest.raises(UserError, match="at least 2 forget samples"):
        attacker_split(toy_split("forget", 1, by_brightness, 2), 0.1, 0)


# ----------------------------------------------------------------------------- features in the evaluation


def test_features_come_from_the_logits_pass_and_leave_the_logits_unchanged():
    split = toy_split("test", 50, lambda x: torch.zeros(len(x), dtype=torch.long), 0)
    model = MLP(3, in_channels=1, image_size=4, mean=[0.5], std=[0.25], hidden=[8], activation="relu")
    plain, with_features = predict(model, split, CPU), predict(model, split, CPU, features=True)
    assert plain.features is None and with_features.features.shape == (50, 8)
    assert torch.equal(plain.logits, with_features.logits)
    assert torch.allclose(model.head(with_features.features), with_features.logits)
    with pytest.raises(UserError, match="penultimate features"):
        predict(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), split, CPU, features=True)


# ----------------------------------------------------------------------------- end to end on digits


def test_deep_evaluation_end_to_end_keeps_the_standard_values_and_adds_the_new_ones(make_cfg):
    common = ["method=ga", "recipe.epochs=3", "method.epochs=1"]
    standard = run(make_cfg([*common, "eval=standard"], subdir="standard"))
    deep = run(make_cfg([*common, "eval=deep"], subdir="deep"))
    for who in ("original", "retrain"):
        mine, theirs = deep[who]["metrics"], standard[who]["metrics"]
        assert {k: mine[k] for k in theirs} == theirs, who
        assert set(NEW_KEYS) <= set(mine), who
    assert {k: deep["metrics"][k] for k in standard["metrics"]} == standard["metrics"]
    assert deep["retrain"]["metrics"]["cka_position_forget"] == 0.0
    assert deep["original"]["metrics"]["cka_position_forget"] == 1.0
    for key in NEW_KEYS:
        assert 0.0 <= deep["metrics"][key] <= 1.0, key
        info = deep["metric_info"][key]
        assert info["ideal"] == "retrain" and info["direction"] and info["label"], key
    assert set(deep["gap"]) >= {"probe_forget_acc", "relearn_forget_acc", "cka_position_forget"}
    table = format_table(deep)
    assert all(label in table for label in ("probe-f", "CKApos-f", "relearn"))


def test_deep_evaluation_in_worker_processes_and_from_stored_reference_values_is_the_same(make_cfg):
    common = [
        "method=ga",
        "recipe.epochs=3",
        "method.epochs=1",
        "eval=deep",
        "forget=class",
        "forget.classes=[1]",
    ]
    serial = run(make_cfg([*common, "runtime.eval_workers=0"], subdir="serial"))
    pooled = run(make_cfg([*common, "runtime.eval_workers=2"], subdir="pooled"))  # references read back
    assert pooled["eval_workers"] == 2
    for who in ("original", "retrain"):
        assert pooled[who]["metrics"] == serial[who]["metrics"], who
    assert serial["retrain"]["metrics"]["cka_position_test"] == 0.0  # Retrain against itself, exactly
    assert pooled["metrics"] == serial["metrics"]


def test_on_digits_retrains_probe_recovers_less_of_a_forgotten_class_than_the_originals(make_cfg):
    res = run(
        make_cfg(
            ["method=none", "eval=deep", "forget=class", "forget.classes=[3]", "eval.metrics.relearn.steps=0"]
        )
    )
    original, retrain = res["original"]["metrics"], res["retrain"]["metrics"]
    assert retrain["forget_acc"] == 0.0  # Retrain never names the class ...
    assert 0.5 < retrain["probe_forget_acc"] < original["probe_forget_acc"]  # ... its features half-know it


# ----------------------------------------------------------------------------- the results paragraph


def fake_result(method: str, seed: int, metrics: dict, original: dict, retrain: dict) -> dict:
    info = {k: {"order": i, "ideal": "retrain", "vs_retrain": True} for i, k in enumerate(metrics)}
    return {
        "method": method,
        "dataset": "d",
        "model": "m",
        "seed": seed,
        "forget": {"scenario": "class", "classes": [0]},
        "metrics": metrics,
        "original": {"metrics": original},
        "retrain": {"metrics": retrain},
        "gap": {k: metrics[k] - retrain[k] for k in metrics},
        "metric_info": info,
    }


def test_the_paragraph_names_methods_good_on_outputs_but_not_on_representations():
    from pathlib import Path

    from unlearnbench.report.aggregate import aggregate
    from unlearnbench.report.deep import surface_section
    from unlearnbench.report.runs import parse_run

    def values(forget, test, probe, position, relearn):
        return {
            "forget_acc": forget,
            "retain_acc": 0.99,
            "test_acc": test,
            "probe_forget_acc": probe,
            "cka_position_forget": position,
            "relearn_forget_acc": relearn,
        }

    retrain, original = values(0.0, 0.9, 0.40, 0.0, 0.30), values(1.0, 0.9, 0.75, 1.0, 0.95)
    rows = {
        "relabel": values(0.0, 0.89, 0.72, 0.6, 0.28),  # outputs like Retrain's, features the original's
        "sound": values(0.02, 0.88, 0.45, 0.05, 0.33),  # close on both
        "wrecked": values(0.0, 0.30, 0.10, 0.5, 0.10),  # test accuracy gone: not good on outputs
    }
    runs = [
        parse_run(fake_result(m, seed, v, original, retrain), Path(f"{m}{seed}"))
        for m, v in rows.items()
        for seed in (0, 1)
    ]
    (text, blank) = surface_section(aggregate(runs))[2:4]
    assert blank == "" and text.startswith("**class (classes=0).** 2 of 3 methods look good on outputs")
    assert (
        "relabel (forget accuracy 0.0 %, Retrain 0.0): linear-probe accuracy on D_f 72.0 % (Retrain 40.0, "
        in text
    )
    assert "CKA position on D_f (0 = Retrain's features, 100 = the original's) 60.0 %" in text
    assert "relearning" not in text.split("relabel")[1]  # 28 % is below Retrain's 30 %: not flagged
    assert text.endswith("Good on both: sound.") and "wrecked" not in text
    outputs_only = {k: v for k, v in original.items() if k in ("forget_acc", "retain_acc", "test_acc")}
    standard = parse_run(fake_result("ft", 0, outputs_only, outputs_only, outputs_only), Path("ft"))
    assert "No representation metrics" in surface_section(aggregate([standard]))[2]


@pytest.mark.skipif(not CIFAR10_JPEG.is_file(), reason=f"CIFAR-10 JPEG archive not found at {CIFAR10_JPEG}")
def test_deep_evaluation_runs_end_to_end_on_memorise_cifar10(make_cfg, decoded_cifar10_jpeg):
    cfg = make_cfg(
        ["experiment=memorise_cifar10", "debug=fast", "eval=deep", "forget=class", "forget.classes=[0]"]
    )
    cfg.paths.data_dir = str(SHARED_DATA)
    res = run(cfg)
    assert res["model"] == "mlp_relu" and set(res["metric_info"]) >= set(NEW_KEYS)
    for who in (res["metrics"], res["original"]["metrics"], res["retrain"]["metrics"]):
        assert all(0.0 <= who[k] <= 1.0 for k in NEW_KEYS)


def test_a_diverged_method_gets_no_deep_values_and_the_references_keep_theirs(make_cfg, monkeypatch):
    import unlearnbench.runner as runner
    from unlearnbench.methods.lib.common import DivergedError

    def diverge(model, where):
        raise DivergedError(f"non-finite weights after {where}")

    monkeypatch.setattr(runner, "check_weights_finite", diverge)
    res = run(make_cfg(["method=ga", "method.epochs=1", "recipe.epochs=1", "eval=deep"]))
    assert res["status"] == "diverged"
    assert all(res["metrics"][k] is None for k in NEW_KEYS)
    assert res["original"]["metrics"]["cka_position_test"] == 1.0
    assert 0.0 <= res["retrain"]["metrics"]["relearn_forget_acc"] <= 1.0


def test_the_deep_preset_is_the_standard_one_plus_the_three_metrics(make_cfg):
    standard, deep = (make_cfg([f"eval={name}"]).eval for name in ("standard", "deep"))
    assert set(deep.metrics) == set(standard.metrics) | {"linear_probe", "cka", "relearn"}
    assert deep.retrain is True and deep.metrics.relearn.steps == 30
