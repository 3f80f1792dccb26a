"""IMU (Fan et al., arXiv 2508.01620): influence maths, selection rule, scope, data access, end to end."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import unlearnbench.methods.imu as imu_module
from unlearnbench.data.batches import Augment
from unlearnbench.data.splits import Split, Splits
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import GrantedSplits, SplitAccessError, UnlearnContext
from unlearnbench.methods.imu import IMU, select_by_influence, weighted_ascent_loss
from unlearnbench.methods.lib.common import l1_norm
from unlearnbench.methods.lib.influence import (
    head_influence,
    linear_head_influence,
    penultimate_features,
    vmap_head_influence,
)
from unlearnbench.models.common import Classifier
from unlearnbench.runtime import Runtime

K = 4  # classes of the tiny problems


class TinyNet(Classifier):
    """Conv + BatchNorm backbone (so train/eval mode matters) and a swappable head."""

    def __init__(self, head: nn.Module | None = None, width: int = 4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = head if head is not None else nn.Linear(4 * width, K)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def trained_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Move the BN running statistics away from their init, so eval and train mode differ."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model


def brute_force_influence(model: nn.Module, x: torch.Tensor, y: torch.Tensor, damping: float) -> torch.Tensor:
    """One backward per sample on the full model in eval mode, then the explicit Fisher formula."""
    model.eval()
    grads = []
    for i in range(len(y)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.head.parameters()]))
    g = torch.stack(grads).double()
    fisher = (g**2).mean(0) + damping
    return -((g / fisher) * g.mean(0)).sum(1)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def float64_problem(n: int = 24, seed: int = 0):
    torch.manual_seed(seed)
    model = TinyNet().double()
    x = torch.rand(n, 1, 6, 6, dtype=torch.float64)
    y = torch.randint(0, K, (n,))
    return trained_bn(model, x), x, y


# ---------- influence maths ----------


def test_closed_form_influence_equals_per_sample_autograd_loop():
    model, x, y = float64_problem()
    expected = brute_force_influence(copy.deepcopy(model), x, y, damping=0.01)
    model.train()  # penultimate_features must switch to eval mode itself
    feats, labels = penultimate_features(model, [(x[:10], y[:10]), (x[10:], y[10:])])
    got = head_influence(model.head, feats, labels, damping=0.01)
    assert model.training  # mode restored
    assert rel_err(got, expected) <= 1e-5


def test_closed_form_without_bias_and_with_other_damping():
    model, x, y = float64_problem(seed=1)
    model.head = nn.Linear(16, K, bias=False).double()
    expected = brute_force_influence(model, x, y, damping=0.3)
    feats, labels = penultimate_features(model, [(x, y)])
    assert rel_err(linear_head_influence(feats, labels, model.head.weight, None, 0.3), expected) <= 1e-5


def test_vmap_fallback_equals_closed_form_and_handles_nonlinear_heads():
    model, x, y = float64_problem(seed=2)
    feats, labels = penultimate_features(model, [(x, y)])
    wrapped = nn.Sequential(copy.deepcopy(model.head))  # not a plain nn.Linear: takes the vmap route
    closed = linear_head_influence(feats, labels, model.head.weight, model.head.bias, 0.01)
    assert rel_err(head_influence(wrapped, feats, labels, 0.01), closed) <= 1e-10
    assert rel_err(vmap_head_influence(wrapped, feats, labels, 0.01, chunk_size=5), closed) <= 1e-10

    deep = TinyNet(head=nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, K))).double()
    deep.load_state_dict(model.state_dict(), strict=False)
    expected = brute_force_influence(deep, x, y, 0.01)
    feats, labels = penultimate_features(deep, [(x, y)])
    assert rel_err(vmap_head_influence(deep.head, feats, labels, 0.01, chunk_size=7), expected) <= 1e-5


# ---------- selection rule and loss ----------


def test_selection_keeps_negative_top_fraction_and_clips_at_quantile():
    influence = torch.tensor([-5.0, 3.0, -1.0, -4.0, 0.0, -2.0, -9.0, -0.5, 7.0, -3.0, -16.0])
    positions, weights = select_by_influence(influence, top_data=0.5, clip_quantile=0.93)
    # 8 negatives -> keep 4, largest |I| first: -16, -9, -5, -4
    assert positions.tolist() == [10, 6, 0, 3]
    raw = np.sqrt([16.0, 9.0, 5.0, 4.0])
    cap = np.quantile(raw, 0.93)
    assert cap < 4.0  # the largest weight really is clipped
    np.testing.assert_allclose(weights.numpy(), np.minimum(raw, cap), rtol=1e-6)


def test_selection_rounds_down_keeps_all_negatives_at_one_and_handles_none():
    influence = torch.tensor([-1.0, -4.0, 2.0, -9.0, -2.0, -3.0])
    positions, _ = select_by_influence(influence, top_data=0.7, clip_quantile=1.0)
    assert positions.tolist() == [3, 1, 5]  # 0.7 x 5 negatives = 3.5: the authors' int() keeps 3, not 4
    influence = torch.tensor([-1.0, -4.0, 2.0, -9.0])
    positions, weights = select_by_influence(influence, top_data=0.1, clip_quantile=0.93)
    assert positions.tolist() == [3] and weights.tolist() == [3.0]  # 0.3 rounds to 0: at least one is kept
    positions, weights = select_by_influence(influence, top_data=1.0, clip_quantile=1.0)
    assert positions.tolist() == [3, 1, 0] and weights.tolist() == [3.0, 2.0, 1.0]  # quantile 1: no clipping
    positions, weights = select_by_influence(torch.tensor([0.5, 0.0]), 0.1, 0.93)
    assert positions.numel() == 0 and weights.numel() == 0


def test_weighted_ascent_loss_and_l1():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    ce = F.cross_entropy(logits, labels, reduction="none")
    assert weighted_ascent_loss(logits, labels, torch.tensor([2.0, 0.0, 0.0])) == pytest.approx(-float(ce[0]))
    expected = -float((ce * torch.tensor([1.0, 2.0, 3.0])).sum() / 6)
    assert weighted_ascent_loss(logits, labels, torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(expected)
    head = nn.Linear(3, 2)
    assert float(l1_norm(head)) == pytest.approx(float(head.weight.abs().sum() + head.bias.abs().sum()))


# ---------- the method on a tiny problem ----------


def tiny_splits(n_forget: int = 40, seed: int = 0) -> Splits:
    gen = torch.Generator().manual_seed(seed)

    def split(name: str, n: int) -> Split:
        x = torch.randint(0, 256, (n, 1, 6, 6), generator=gen, dtype=torch.uint8)
        return Split(name, x, torch.randint(0, K, (n,), generator=gen), torch.arange(n))

    forget, retain = split("forget", n_forget), split("retain", 60)
    return Splits(
        train=forget,
        forget=forget,
        retain=retain,
        val=split("val", 10),
        test=split("test", 10),
        num_classes=K,
    )


def tiny_ctx() -> UnlearnContext:
    return UnlearnContext(
        runtime=Runtime(device=torch.device("cpu"), progress=False),
        seed=0,
        num_classes=K,
        forget_ratio=0.4,
        forget_classes=None,
        augment=Augment(crop_padding=1, flip=True),
    )


def tiny_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return trained_bn(TinyNet(), torch.rand(32, 1, 6, 6)).eval()


def unlearn(method: IMU, model: nn.Module, splits: Splits) -> nn.Module:
    return method.unlearn(model, GrantedSplits(splits, method.needs, "imu"), tiny_ctx())


def backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}


def test_is_retain_free_by_construction():
    splits = tiny_splits()
    granted = GrantedSplits(splits, IMU.needs, "imu")
    assert IMU.needs == frozenset({"forget"})
    for name in ("retain", "val", "test", "train"):
        with pytest.raises(SplitAccessError):
            getattr(granted, name)
    # The whole unlearning stage runs on these granted splits: any access to retain/val would raise.
    unlearn(IMU(epochs=2, batch_size=8, top_data=0.5), tiny_model(), splits)


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_fc_scope_changes_only_the_head(bn_mode):
    model = tiny_model()
    before_params = {n: p.detach().clone() for n, p in model.named_parameters()}
    before_buffers = backbone_state(model)
    out = unlearn(IMU(epochs=3, batch_size=8, top_data=0.5, bn_mode=bn_mode), model, tiny_splits())
    for name, p in out.named_parameters():
        changed = not torch.equal(p, before_params[name])
        assert changed == name.startswith("head."), name
        assert p.requires_grad  # requires_grad flags restored
    running = {k: v for k, v in backbone_state(out).items() if "running" in k}
    moved = any(not torch.equal(v, before_buffers[k]) for k, v in running.items())
    assert moved == (bn_mode == "train")  # train mode (the authors'): BN running statistics move


def test_all_scope_changes_the_backbone_too():
    model = tiny_model()
    before = model.body[0].weight.detach().clone()
    out = unlearn(IMU(epochs=2, batch_size=8, top_data=0.5, update_scope="all"), model, tiny_splits())
    assert not torch.equal(out.body[0].weight, before)


def count_feature_calls(model: TinyNet) -> list[int]:
    calls = [0]
    original = model.features

    def counted(x):
        calls[0] += 1
        return original(x)

    model.features = counted
    return calls


@pytest.mark.parametrize("recompute", ["once", "epoch"])
def test_feature_cache_fast_path_matches_full_path(recompute):
    splits = tiny_splits()
    kwargs = dict(
        epochs=3, batch_size=8, top_data=0.5, bn_mode="eval", augment=False, recompute_influence=recompute
    )
    fast, slow = tiny_model(), tiny_model()
    start = copy.deepcopy(fast.head.state_dict())
    fast_calls, slow_calls = count_feature_calls(fast), count_feature_calls(slow)
    assert IMU(**kwargs).uses_feature_cache() and not IMU(**kwargs, fast_path=False).uses_feature_cache()
    unlearn(IMU(**kwargs), fast, splits)
    unlearn(IMU(**kwargs, fast_path=False), slow, splits)
    assert fast_calls[0] == 1  # one forward pass over D_f (40 samples < eval batch size), nothing else
    assert slow_calls[0] > 1
    assert not torch.allclose(fast.head.weight, start["weight"])
    for name, value in fast.head.state_dict().items():
        torch.testing.assert_close(value, slow.head.state_dict()[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("recompute, rounds", [("once", 1), ("epoch", 3)])
def test_influence_is_computed_on_the_model_before_each_round(monkeypatch, recompute, rounds):
    seen = []

    def recording(head, feats, labels, damping):
        out = head_influence(head, feats, labels, damping)
        seen.append(out)
        return out

    monkeypatch.setattr(imu_module, "head_influence", recording)
    splits = tiny_splits()
    model = tiny_model()
    x = splits.forget.x.float().div(255)
    expected = brute_force_influence(copy.deepcopy(model), x, splits.forget.y, damping=0.01)
    unlearn(
        IMU(epochs=3, batch_size=8, top_data=0.5, augment=False, recompute_influence=recompute), model, splits
    )
    assert len(seen) == rounds
    assert rel_err(seen[0], expected) <= 1e-4  # first round: un-augmented D_f, original model, eval mode
    if rounds > 1:
        assert not torch.allclose(seen[-1], seen[0])  # later rounds see the updated head


def test_augmented_influence_differs_from_clean_but_is_seeded():
    splits = tiny_splits()
    runs = {}
    for name, augment in (("clean", False), ("aug_a", True), ("aug_b", True)):
        model = tiny_model()
        runs[name] = unlearn(
            IMU(epochs=2, batch_size=8, top_data=0.5, augment=augment), model, splits
        ).head.weight
    torch.testing.assert_close(runs["aug_a"], runs["aug_b"])  # seeded: reproducible
    assert not torch.allclose(runs["aug_a"], runs["clean"])


@pytest.mark.parametrize(
    "key, value",
    [
        ("top_data", 0.0),
        ("top_data", 1.5),
        ("update_scope", "backbone"),
        ("bn_mode", "frozen"),
        ("recompute_influence", "step"),
        ("damping", 0.0),
        ("weight_clip_quantile", 0.0),
    ],
)
def test_bad_options_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"method.{key}"):
        IMU(**{key: value})


def test_the_shared_sgd_options_are_config_errors_too(tmp_path):
    """epochs, lr, ... are checked once for every method, by the config check."""
    from unlearnbench.config.core import compose, validate

    for key, value in (("epochs", 0), ("lr", -1.0), ("momentum", 1.0)):
        with pytest.raises(ConfigError, match=f"method.{key}"):
            validate(compose(["method=imu", f"method.{key}={value}"], tmp_path))


# ---------- end to end ----------


def test_digits_end_to_end_with_defaults_and_a_split_spy(make_cfg, monkeypatch):
    import unlearnbench.unlearning as unlearning
    from unlearnbench.runner import run

    requested: list[str] = []

    class SpyGrantedSplits(GrantedSplits):
        def __getattr__(self, name):
            requested.append(name)
            return super().__getattr__(name)

    monkeypatch.setattr(unlearning, "GrantedSplits", SpyGrantedSplits)
    cfg = make_cfg(["method=imu", "recipe.epochs=3", "eval.retrain=false"])  # no Retrain: halves the time
    # The authors' defaults, except the two keys conf/preset/imu/digits.yaml adjusts for 130-image forget sets
    assert cfg.method.epochs == 10 and cfg.method.alpha_l1 == 0.2 and cfg.method.damping == 0.01
    assert (cfg.method.lr, cfg.method.top_data) == (0.002, 0.3)
    res = run(cfg)
    assert set(requested) == {"forget"}
    assert res["method"] == "imu" and res["forget"]["size"] > 0
    assert res["config"]["method"]["update_scope"] == "fc" and res["config"]["method"]["bn_mode"] == "train"
    assert res["time_s"]["unlearn"] > 0
    before, after = res["original"]["metrics"]["forget_acc"], res["metrics"]["forget_acc"]
    assert after < before  # defaults (with the digits preset), no override
    assert 0.0 <= res["metrics"]["mia_efficacy"] <= 1.0


def test_digits_preset_forgets_more_gently_than_the_authors_defaults(make_cfg, tmp_path):
    """On 130-image forget sets the authors' CIFAR values overshoot Retrain by far; the digits preset (see
    conf/preset/imu/digits.yaml) lands closer to Retrain's forget accuracy and keeps more test accuracy."""
    from unlearnbench.runner import run

    overrides = ["method=imu", "dataset=digits", "forget_ratio=0.1"]
    preset = run(make_cfg(overrides))
    authors_cfg = make_cfg([*overrides, "~preset@method", "eval.retrain=false"], subdir="authors")
    authors_cfg.paths.cache_dir = str(tmp_path / "cache")  # the same original model
    authors = run(authors_cfg)
    assert preset["method_preset"] == "imu/digits" and authors["config"]["method"]["lr"] == 0.01
    assert authors["cache"]["original"]["hit"]
    target = preset["retrain"]["metrics"]["forget_acc"]
    gentle, harsh = preset["metrics"], authors["metrics"]
    assert abs(gentle["forget_acc"] - target) < abs(harsh["forget_acc"] - target)
    assert gentle["test_acc"] > harsh["test_acc"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_embedded_default_run_shows_unlearning(make_cfg, seed):
    """`unlearn` with no arguments (digits, IMU with its digits preset): the unlearned row moves from the original
    toward Retrain on forget accuracy, and test accuracy stays within 2 points of the original's."""
    from unlearnbench.runner import run

    res = run(make_cfg([f"seed={seed}"]))
    assert (res["dataset"], res["method"], res["method_preset"]) == ("digits", "imu", "imu/digits")
    original, unlearned, retrain = res["original"]["metrics"], res["metrics"], res["retrain"]["metrics"]
    assert abs(unlearned["forget_acc"] - retrain["forget_acc"]) < abs(
        original["forget_acc"] - retrain["forget_acc"]
    )
    assert abs(unlearned["test_acc"] - original["test_acc"]) <= 0.02
    assert unlearned["avg_gap"] < original["avg_gap"]  # better than doing nothing


def test_bench_script_agrees_with_the_loop():
    from unlearnbench.bench import imu as bench

    out = bench.main(
        [
            "--device",
            "cpu",
            "--model",
            "small_cnn",
            "--samples",
            "48",
            "--loop-samples",
            "6",
            "--repeats",
            "1",
        ]
    )
    assert out["loop_samples"] == 6 and out["max_rel_diff"] < 1e-4 and out["vmap_max_rel_diff"] < 1e-10
    assert set(out["rates"]) == {"closed_form", "loop", "closed_form_head_only", "vmap_head_only"}
