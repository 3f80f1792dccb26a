"""Mnemonic-code one-shot unlearning (Yamashita et al., ACML 2024, arXiv 2306.05670)."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import compose_cfg
from torch import nn

from unlearnbench.config.core import validate
from unlearnbench.data.batches import Augment, TensorBatches
from unlearnbench.data.splits import Split, Splits
from unlearnbench.errors import ConfigError
from unlearnbench.methods import mnemonic
from unlearnbench.methods.base import GrantedSplits, UnlearnContext
from unlearnbench.methods.mnemonic import (
    MnemonicUnlearning,
    choose_sign,
    code_seed,
    log_ratio,
    make_codes,
    perturbation,
)
from unlearnbench.runner import run
from unlearnbench.runtime import Runtime

# Small models need larger steps than ResNet-18's defaults: their code Fisher ratios r = F_f / F_r stay
# below ~1e4 (so lambda1 = 1e-5 moves no prediction), and after only 4 epochs the codes are less
# specialised still (max r ~1e2), so the test uses lambda1 = 1e-2 (with the full 15-epoch recipe the
# authors' MNIST-MLP values 1e-3 / 10 forget at some seeds and not at others: see the preset's YAML).
SMALL_MODEL = ["method.lambda1=1e-2", "method.lambda2=10"]
DIGITS = ["method=mnemonic", "forget=class", "forget.classes=[0]", "eval=fast", "recipe.epochs=4"]


# --- the training hook -------------------------------------------------------------------------------------


def test_hook_spec_and_seeded_codes():
    method = MnemonicUnlearning(t_mix=0.25)
    hook = method.training_hook(3, (1, 4, 4), 5)
    assert hook.spec == {
        "name": "mnemonic_codes",
        "t_mix": 0.25,
        "code_seed": code_seed(3),
        "shape": [1, 4, 4],
        "num_classes": 5,
    }
    codes = hook.state["codes"]
    assert codes.shape == (5, 1, 4, 4) and codes.dtype == torch.float32
    assert 0.0 <= float(codes.min()) and float(codes.max()) < 1.0
    assert torch.equal(codes, method.training_hook(3, (1, 4, 4), 5).state["codes"])  # same seed, same codes
    other = method.training_hook(4, (1, 4, 4), 5)
    assert other.spec["code_seed"] != hook.spec["code_seed"] and not torch.equal(codes, other.state["codes"])
    assert not torch.allclose(codes[0], codes[1])  # one distinct code per class


def test_hook_replaces_about_t_mix_of_samples_with_their_class_code():
    t_mix, n = 0.3, 20000
    hook = MnemonicUnlearning(t_mix=t_mix).training_hook(0, (1, 4, 4), 5)
    codes = hook.state["codes"]
    y = torch.randint(0, 5, (n,), generator=torch.Generator().manual_seed(1))
    x = torch.full((n, 1, 4, 4), -1.0)  # codes lie in [0, 1): a replaced sample is easy to spot
    out_x, out_y = hook.apply(x.clone(), y.clone(), torch.Generator().manual_seed(7))
    replaced = (out_x != -1.0).flatten(1).any(1)
    assert torch.equal(out_y, y)
    assert abs(float(replaced.float().mean()) - t_mix) < 0.015  # binomial sd ~0.003
    assert torch.equal(out_x[replaced], codes[y[replaced]])  # the code of the sample's own class
    assert (out_x[~replaced] == -1.0).all()
    again, _ = hook.apply(x.clone(), y.clone(), torch.Generator().manual_seed(7))
    assert torch.equal(again, out_x)  # seeded


def test_hook_coin_is_reflipped_each_epoch_after_augmentation():
    n = 400
    hook = MnemonicUnlearning(t_mix=0.5).training_hook(0, (1, 6, 6), 4)
    codes = hook.state["codes"]
    x = torch.randint(0, 256, (n, 1, 6, 6), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    y = torch.arange(n) % 4
    batches = TensorBatches(
        x,
        y,
        batch_size=64,
        shuffle=False,
        augment=Augment(crop_padding=1, flip=True),
        seed=0,
        hook=hook.apply,
    )
    masks = []
    for _ in range(2):
        xs = torch.cat([xb for xb, _ in batches])
        is_code = (xs == codes[y]).flatten(1).all(1)  # codes arrive un-augmented (not cropped or flipped)
        masks.append(is_code)
        assert 0.4 < float(is_code.float().mean()) < 0.6
    assert not torch.equal(masks[0], masks[1])


# --- the forgetting step -----------------------------------------------------------------------------------


def test_log_ratio_handles_nan_and_infinities():
    inf = math.inf
    f_forget = torch.tensor([1.0, inf, 1.0, inf, 4.0, 1.0])
    f_remain = torch.tensor([1.0, 1.0, inf, inf, 1.0, 2.0])
    l = log_ratio(f_forget, f_remain)
    # +inf and -inf -> the largest finite entry (log 4); NaN (inf - inf) -> 0
    log4 = math.log(4)
    expected = torch.tensor([0.0, log4, log4, 0.0, log4, -math.log(2)], dtype=torch.float64)
    assert torch.allclose(l, expected)
    all_inf = log_ratio(torch.tensor([inf, inf]), torch.tensor([1.0, 1.0]))  # no finite entry: 0
    assert torch.equal(all_inf, torch.zeros(2, dtype=torch.float64))


def test_perturbation_scale_is_capped_by_both_lambdas():
    f_forget, f_remain = torch.tensor([1e-3, 1e-6, 1e-9]), torch.full((3,), 1e-6)  # r = 1000, 1, 0.001
    loose = perturbation(f_forget, f_remain, lambda1=1e-5, lambda2=1e4)  # lambda2 / max r = 10 > lambda1
    assert torch.allclose(loose, torch.tensor([1e-2, 1e-5, 1e-8]), rtol=1e-4)
    tight = perturbation(f_forget, f_remain, lambda1=1e-5, lambda2=1e-3)  # lambda2 / max r = 1e-6 < lambda1
    assert torch.allclose(tight, torch.tensor([1e-3, 1e-6, 1e-9]), rtol=1e-4)
    assert float(tight.max()) == pytest.approx(1e-3, rel=1e-5)  # the largest step equals lambda2


def test_choose_sign_prefers_the_strictly_better_and_ties_go_to_minus():
    assert choose_sign(1.9, 1.5) == 1
    assert choose_sign(1.5, 1.9) == -1
    assert choose_sign(1.5, 1.5) == -1


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU())
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        return self.head(self.body(x))


def tiny_setup(seed: int = 0):
    torch.manual_seed(seed)
    model = TinyNet()
    bn = model.body[2]
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    codes = make_codes(4, (3, 2, 2), seed + 100)
    return model.eval(), codes


def tiny_ctx(codes: torch.Tensor, forget_classes: list[int]) -> tuple[GrantedSplits, UnlearnContext]:
    empty = Split(
        "x",
        torch.zeros(0, 3, 2, 2, dtype=torch.uint8),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
    )
    splits = Splits(
        train=empty,
        forget=empty,
        retain=empty,
        val=empty,
        test=empty,
        num_classes=4,
        forget_classes=forget_classes,
    )
    ctx = UnlearnContext(
        runtime=Runtime(device=torch.device("cpu"), progress=False),
        seed=0,
        num_classes=4,
        forget_ratio=0.25,
        forget_classes=forget_classes,
        augment=Augment(),
        hook_state={"codes": codes},
    )
    return GrantedSplits(splits, MnemonicUnlearning.needs, "mnemonic"), ctx


def direct_deltas(
    model: nn.Module, codes: torch.Tensor, forget: list[int], lambda1: float, lambda2: float
) -> dict:
    """The paper's recipe written out with .backward() and per-class p.grad, independently of the module."""
    names = [n for n, _ in model.named_parameters()]
    acc = {g: {n: torch.full_like(p, 1e-16) for n, p in model.named_parameters()} for g in ("f", "r")}
    for c in range(len(codes)):
        model.zero_grad()
        nn.functional.cross_entropy(model(codes[c][None]), torch.tensor([c])).backward()
        group = "f" if c in forget else "r"
        for n, p in model.named_parameters():
            acc[group][n] += p.grad**2
    n_f, n_r = len(forget), len(codes) - len(forget)
    deltas = {}
    for n in names:
        l = torch.log(acc["f"][n] / n_f) - torch.log(acc["r"][n] / n_r)
        l[torch.isnan(l)] = 0
        l[torch.isinf(l)] = l[~torch.isinf(l)].max()
        r = torch.exp(l)
        deltas[n] = min(lambda1, lambda2 / float(r.max())) * r
    model.zero_grad()
    return deltas


def direct_code_score(model: nn.Module, codes: torch.Tensor, forget: list[int]) -> float:
    with torch.no_grad():
        correct = (model(codes).argmax(1) == torch.arange(len(codes))).float()
    keep = [c for c in range(len(codes)) if c not in forget]
    return float(1 - correct[forget].mean() + correct[keep].mean())


@pytest.mark.parametrize("lambdas", [(1e-5, 1e4), (1.0, 3.0)])
def test_unlearn_applies_the_better_of_plus_and_minus_exactly(lambdas):
    model, codes = tiny_setup()
    forget = [1]
    expected = direct_deltas(model, codes, forget, *lambdas)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    shifted = {}
    for sign in (1, -1):
        m = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.add_(sign * expected[n])
        shifted[sign] = direct_code_score(m, codes, forget)
    sign = 1 if shifted[1] > shifted[-1] else -1
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    out = MnemonicUnlearning(lambda1=lambdas[0], lambda2=lambdas[1]).unlearn(model, *tiny_ctx(codes, forget))
    moved = 0
    for n, p in out.named_parameters():
        assert torch.allclose(p, theta[n] + sign * expected[n], rtol=1e-5, atol=1e-7), n
        moved += int((p != theta[n]).sum())
    assert moved > 0
    for n, b in out.named_buffers():  # BN running statistics are not parameters: untouched
        assert torch.equal(b, buffers[n]), n


@pytest.mark.parametrize(
    ("accs", "sign"),
    [([(0.0, 1.0), (1.0, 0.5)], 1), ([(1.0, 0.5), (0.0, 1.0)], -1), ([(0.0, 1.0), (0.0, 1.0)], -1)],
)
def test_only_the_selected_sign_is_applied(monkeypatch, accs, sign):
    model, codes = tiny_setup(1)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    deltas = direct_deltas(model, codes, [0], 1e-2, 1.0)
    calls = iter(accs)  # first evaluation: theta + delta, second: theta - delta
    monkeypatch.setattr(mnemonic, "code_accuracies", lambda *args: next(calls))
    out = MnemonicUnlearning(lambda1=1e-2, lambda2=1.0).unlearn(model, *tiny_ctx(codes, [0]))
    for n, p in out.named_parameters():
        assert torch.allclose(p, theta[n] + sign * deltas[n], rtol=1e-5, atol=1e-7), n


def test_needs_no_data_and_refuses_random_forgetting(tmp_path):
    assert MnemonicUnlearning.needs == frozenset()
    # each forgets whole class labels
    assert set(MnemonicUnlearning.scenarios) == {"class", "subclass", "superclass"}
    with pytest.raises(ConfigError, match="class-wise"):
        validate(compose_cfg(["method=mnemonic", "forget=random"], tmp_path))
    validate(compose_cfg(["method=mnemonic", "forget=class", "forget.classes=[1]"], tmp_path))
    with pytest.raises(ConfigError, match="method.t_mix"):
        MnemonicUnlearning(t_mix=1.5)
    with pytest.raises(ConfigError, match="method.lambda1"):
        MnemonicUnlearning(lambda1=0)


def test_validate_rejects_the_default_random_scenario(tmp_path):
    with pytest.raises(ConfigError, match="forget='random'.*class-wise"):
        validate(compose_cfg(["method=mnemonic"], tmp_path))


def test_cli_random_scenario_is_one_line_exit_2(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "unlearnbench.cli", "method=mnemonic", "logger=none"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "forget='random'" in lines[0] and "class-wise" in lines[0]
    assert not list(tmp_path.rglob("*.pt"))


# --- through the runner on digits ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """plain original (method=none), code-trained original, then a second mnemonic run on the same cache."""
    root = tmp_path_factory.mktemp("mnemonic_digits")
    seen: list[torch.Tensor] = []
    original_unlearn = MnemonicUnlearning.unlearn

    def spy(self, model, data, ctx):
        seen.append(ctx.hook_state["codes"].clone())
        return original_unlearn(self, model, data, ctx)

    def cfg(overrides, name):
        c = compose_cfg(overrides, root)
        c.paths.output_dir = str(root / name)
        return c

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MnemonicUnlearning, "unlearn", spy)
        plain = run(cfg(["method=none", *DIGITS[1:]], "none"))
        first = run(cfg([*DIGITS, *SMALL_MODEL], "first"))
        second = run(cfg([*DIGITS, *SMALL_MODEL], "second"))
    return {"plain": plain, "first": first, "second": second, "codes": seen}


def test_code_trained_original_has_its_own_cache_entry(digits_runs):
    plain, first, second = (digits_runs[k]["cache"] for k in ("plain", "first", "second"))
    assert plain["original"]["key"] != first["original"]["key"]  # the hook spec is part of the key
    assert not plain["original"]["hit"] and not first["original"]["hit"]
    assert second["original"]["hit"] and second["original"]["key"] == first["original"]["key"]


def test_codes_come_back_identical_from_the_checkpoint(digits_runs):
    first_codes, second_codes = digits_runs["codes"]
    expected = make_codes(10, (1, 8, 8), code_seed(0))
    assert torch.equal(first_codes, expected) and torch.equal(second_codes, expected)
    payload = torch.load(digits_runs["second"]["cache"]["original"]["path"], weights_only=True)
    assert torch.equal(payload["hook_state"]["codes"], expected)


def forgets_selectively(before: dict, after: dict) -> None:
    """The forgotten class loses most of its accuracy; the remaining classes lose far less than it does."""
    for split in ("forget_acc", "test_forget_acc"):
        assert after[split] < before[split] / 2
    forgotten_drop = before["test_forget_acc"] - after["test_forget_acc"]
    assert before["test_acc"] - after["test_acc"] < forgotten_drop / 3


def test_digits_class_forgetting_end_to_end(digits_runs):
    res = digits_runs["first"]
    before, after = res["original"]["metrics"], res["metrics"]
    assert res["method"] == "mnemonic" and res["forget"]["classes"] == [0]
    assert before["forget_acc"] > 0.9 and before["test_forget_acc"] > 0.9  # the original knows class 0
    forgets_selectively(before, after)
    assert digits_runs["second"]["metrics"] == after  # deterministic: same codes, same model, same result


def test_digits_preset_forgets_where_the_cifar_lambdas_do_not(make_cfg, tmp_path):
    """`unlearn method=mnemonic forget=class forget.classes=[0]` on digits with its preset (the full recipe):
    the preset's lambdas forget class 0 selectively, where the authors' CIFAR-10 / ResNet-18 lambdas (1e-5,
    1e4) move no prediction of digits' small CNN (see conf/preset/mnemonic/digits.yaml)."""
    overrides = ["method=mnemonic", "forget=class", "forget.classes=[0]", "eval=fast", "eval.retrain=false"]
    res = run(make_cfg(overrides))
    cifar_cfg = make_cfg([*overrides, "method.lambda1=1e-5", "method.lambda2=1e4"], subdir="cifar_lambdas")
    cifar_cfg.paths.cache_dir = str(tmp_path / "cache")  # the same code-trained original
    cifar = run(cifar_cfg)
    assert res["method_preset"] == "mnemonic/digits" and cifar["cache"]["original"]["hit"]
    before = res["original"]["metrics"]
    assert before["forget_acc"] > 0.9
    forgets_selectively(before, res["metrics"])
    assert cifar["metrics"]["forget_acc"] == before["forget_acc"]
    assert cifar["metrics"]["test_acc"] == before["test_acc"]
