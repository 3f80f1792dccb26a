"""Behaviour tests for SCRUB, SSD, Bad Teacher, Fisher forgetting and their shared importance module."""

from __future__ import annotations

import copy
import math
from collections import Counter
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from unlearnbench.config.core import build
from unlearnbench.data.batches import Augment, TensorBatches
from unlearnbench.data.splits import Split
from unlearnbench.methods import bad_teacher, fisher, scrub, ssd
from unlearnbench.methods.base import GrantedSplits, UnlearnContext
from unlearnbench.methods.lib.common import sgd, train_epochs
from unlearnbench.methods.lib.importance import (
    distill_kl,
    frozen_copy,
    mean_squared_gradients,
    reinitialised_copy,
)
from unlearnbench.models.small import MLP, SmallCNN
from unlearnbench.runtime import Runtime

N_CLASSES = 3


def make_split(name: str, n: int, seed: int, offset: int = 0) -> Split:
    """Learnable synthetic images: the class sets the brightness of one quadrant."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, N_CLASSES, (n,), generator=gen)
    x = torch.randint(0, 80, (n, 1, 4, 4), generator=gen)
    for c in range(N_CLASSES):
        x[y == c, :, (c // 2) * 2 : (c // 2) * 2 + 2, (c % 2) * 2 : (c % 2) * 2 + 2] += 170
    return Split(name, x.to(torch.uint8), y, torch.arange(offset, offset + n))


def make_ctx(seed: int = 0) -> UnlearnContext:
    return UnlearnContext(
        runtime=Runtime(torch.device("cpu"), progress=False),
        seed=seed,
        num_classes=N_CLASSES,
        forget_ratio=0.25,
        forget_classes=None,
        augment=Augment(crop_padding=0, flip=False),
    )


def mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(N_CLASSES, in_channels=1, image_size=4, mean=[0.3], std=[0.3], hidden=(12,), activation="tanh")


def cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(N_CLASSES, in_channels=1, mean=[0.3], std=[0.3], width=4)


def floats(split: Split) -> torch.Tensor:
    return split.x.float() / 255.0


def granted(forget: Split, retain: Split, needs: frozenset[str]) -> GrantedSplits:
    class Holder:
        num_classes = N_CLASSES

    holder = Holder()
    holder.forget, holder.retain = forget, retain
    return GrantedSplits(holder, needs, "test")


@pytest.fixture(scope="module")
def data() -> dict[str, Split]:
    return {"forget": make_split("forget", 24, seed=1), "retain": make_split("retain", 72, seed=2, offset=24)}


@pytest.fixture(scope="module")
def trained(data) -> torch.nn.Module:
    """A small CNN (with batch norm) fitted to forget + retain: the 'original' model."""
    model = cnn()
    split = ssd.full_training_set(data["forget"], data["retain"])
    batches = TensorBatches(split.x, split.y, 32, shuffle=True, seed=0)
    model.train()
    train_epochs(
        model,
        30,
        batches,
        lambda m, x, y: F.cross_entropy(m(x), y),
        sgd(model.parameters(), 0.05),
        make_ctx(),
        "fit",
    )
    return model.eval()


# --- shared importance module ---------------------------------------------------------------------


@pytest.mark.parametrize("per_sample", [False, True])
def test_mean_squared_gradients_equals_brute_force_loop(trained, data, per_sample):
    model = copy.deepcopy(trained).eval()
    split = data["forget"]  # 24 samples in batches of 10: a ragged last batch
    batches = TensorBatches(split.x, split.y, 10)
    got = mean_squared_gradients(model, batches, per_sample=per_sample, chunk_size=4)
    groups = (
        [(x[None], y[None]) for x, y in zip(floats(split), split.y)]
        if per_sample
        else [(floats(split)[i : i + 10], split.y[i : i + 10]) for i in range(0, len(split), 10)]
    )
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for x, y in groups:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad**2 / len(groups)
    assert set(got) == set(expected)
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=1e-4, atol=1e-10)
    assert any(float(v.abs().max()) > 0 for v in got.values())
    if per_sample:
        with pytest.raises(ValueError, match="eval mode"):
            mean_squared_gradients(model.train(), TensorBatches(split.x, split.y, 10), per_sample=True)


def test_distill_kl_is_teacher_to_student_kl_times_t_squared():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen) * 3
    p_s, p_t = (s / 4).softmax(1), (t / 4).softmax(1)
    manual = 16 * (p_t * (p_t.log() - p_s.log())).sum(1)
    torch.testing.assert_close(distill_kl(s, t, 4.0, reduction="none"), manual)
    assert float(distill_kl(s, t, 4.0)) == pytest.approx(float(manual.mean()), rel=1e-5)
    assert float(distill_kl(t, t, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_kl(t, s, 4.0)) != pytest.approx(float(distill_kl(s, t, 4.0)), rel=1e-3)  # asymmetric


def test_teachers_are_frozen_and_random_teacher_is_seeded(trained):
    teacher = frozen_copy(trained)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    a, b, c = reinitialised_copy(trained, 5), reinitialised_copy(trained, 5), reinitialised_copy(trained, 6)
    params = zip(a.named_parameters(), b.parameters(), c.parameters(), trained.parameters())
    for (name, pa), pb, pc, po in params:
        assert torch.equal(pa, pb), name
        if pa.dim() > 1:  # weights are random draws (BN affine resets to constants)
            assert not torch.equal(pa, pc) and not torch.equal(pa, po), name
    assert not any(p.requires_grad for p in a.parameters())
    assert all(p.requires_grad for p in trained.parameters())  # the source is untouched


# --- SCRUB ----------------------------------------------------------------------------------------


def forget_kl(student, teacher, split: Split, temperature: float) -> float:
    with torch.no_grad():
        return float(distill_kl(student.eval()(floats(split)), teacher(floats(split)), temperature))


def test_scrub_max_steps_raise_kl_to_teacher_on_forget_set(trained, data):
    teacher = frozen_copy(trained)
    student = copy.deepcopy(trained)
    with torch.no_grad():  # start just off the teacher: at the teacher itself the KL gradient is zero
        for p in student.parameters():
            p.add_(0.01 * torch.randn_like(p))
    before = forget_kl(student, teacher, data["forget"], 4.0)
    batches = TensorBatches(data["forget"].x, data["forget"].y, 8, shuffle=True, seed=0)
    student.train()
    loss = partial(scrub.max_step_loss, teacher=teacher, temperature=4.0)
    train_epochs(student, 3, batches, loss, sgd(student.parameters(), 0.05), make_ctx(), "max only")
    after = forget_kl(student, teacher, data["forget"], 4.0)
    assert after > 10 * before and after > 0.05, (before, after)


def test_scrub_runs_max_phases_only_in_first_msteps_epochs(trained, data, monkeypatch):
    phases = []

    def spy(model, epochs, batches, step_loss, optimizer, ctx, desc, **kwargs):
        phases.append((desc, len(batches.y)))
        return model

    monkeypatch.setattr(scrub, "train_epochs", spy)
    method = scrub.SCRUB(epochs=3, msteps=2)
    method.unlearn(copy.deepcopy(trained), granted(data["forget"], data["retain"], method.needs), make_ctx())
    n_f, n_r = len(data["forget"]), len(data["retain"])
    assert phases == [
        ("scrub max 1/3", n_f),
        ("scrub min 1/3", n_r),
        ("scrub max 2/3", n_f),
        ("scrub min 2/3", n_r),
        ("scrub min 3/3", n_r),
    ]


def test_scrub_defaults_take_large_scale_batches_512_forget_256_retain(make_cfg, monkeypatch):
    method = build(make_cfg(["method=scrub"]).method)  # the shipped defaults
    steps = Counter()
    real_train_epochs = scrub.train_epochs

    def counting(model, epochs, batches, step_loss, optimizer, ctx, desc, **kwargs):
        real_step = optimizer.step

        def counted_step():
            real_step()
            steps.update([desc])

        optimizer.step = counted_step
        try:
            return real_train_epochs(model, epochs, batches, step_loss, optimizer, ctx, desc, **kwargs)
        finally:
            optimizer.step = real_step

    monkeypatch.setattr(scrub, "train_epochs", counting)
    forget, retain = make_split("forget", 600, seed=3), make_split("retain", 300, seed=4, offset=600)
    method.unlearn(cnn(), granted(forget, retain, method.needs), make_ctx())
    max_steps, min_steps = math.ceil(600 / 512), math.ceil(300 / 256)
    e = method.epochs
    assert steps == Counter(
        {
            **{f"scrub max {i}/{e}": max_steps for i in range(1, method.msteps + 1)},
            **{f"scrub min {i}/{e}": min_steps for i in range(1, e + 1)},
        }
    )


# --- SSD ------------------------------------------------------------------------------------------


def test_ssd_dampens_only_selected_parameters_by_the_capped_ratio():
    model = mlp()
    before = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(3)
    imp_full = {n: torch.rand(p.shape, generator=gen) + 0.1 for n, p in model.named_parameters()}
    # ratios imp_f / imp_D over [0, 6): below alpha, between alpha and lambda (factor capped at 1), above
    imp_forget = {n: v * 6 * torch.rand(v.shape, generator=gen) for n, v in imp_full.items()}
    alpha, lam = 2.0, 3.0
    fraction = ssd.dampen_(model, imp_forget, imp_full, alpha, lam)
    n_sel = n_total = n_capped = 0
    for (name, p), p0 in zip(model.named_parameters(), before.parameters()):
        entries = zip(
            p.flatten().tolist(),
            p0.flatten().tolist(),
            imp_forget[name].flatten().tolist(),
            imp_full[name].flatten().tolist(),
        )
        for new, old, f, d in entries:
            n_total += 1
            if f > alpha * d:
                n_sel += 1
                n_capped += lam * d / f >= 1
                assert new == pytest.approx(old * min(lam * d / f, 1.0), rel=1e-5, abs=1e-12)
            else:
                assert new == old  # bit-identical
    assert 0 < n_capped < n_sel < n_total
    assert fraction == pytest.approx(n_sel / n_total)


def test_ssd_on_class_data_dampens_and_lowers_forget_confidence(trained, data):
    """Forget = all of one class: its specialised weights are dampened, the others untouched."""
    full = ssd.full_training_set(data["forget"], data["retain"])
    is_c = full.y == 0
    forget = Split("forget", full.x[is_c], full.y[is_c], full.indices[is_c])
    retain = Split("retain", full.x[~is_c], full.y[~is_c], full.indices[~is_c])
    model = copy.deepcopy(trained)
    # alpha 3, not 10: with 3 classes the forget class is a third of D, which caps imp_f / imp_D near 9
    method = ssd.SelectiveSynapticDampening(selection_weighting=3.0, batch_size=8)
    method.unlearn(model, granted(forget, retain, method.needs), make_ctx())
    changed = sum(int((p != p0).sum()) for p, p0 in zip(model.parameters(), trained.parameters()))
    total = sum(p.numel() for p in model.parameters())
    assert 0 < changed < total
    with torch.no_grad():
        p_before = trained(floats(forget)).softmax(1)[:, 0].mean()
        p_after = model.eval()(floats(forget)).softmax(1)[:, 0].mean()
    assert p_after < p_before


# --- Bad Teacher ----------------------------------------------------------------------------------


def test_bad_teacher_uses_forget_plus_30_percent_of_retain(trained, data, monkeypatch):
    seen = []
    ctx = make_ctx()
    original_batches = ctx.batches
    monkeypatch.setattr(
        ctx, "batches", lambda split, *a, **k: seen.append(split) or original_batches(split, *a, **k)
    )
    method = bad_teacher.BadTeacher()
    method.unlearn(copy.deepcopy(trained), granted(data["forget"], data["retain"], method.needs), ctx)
    (split,) = seen
    n_f, n_r = len(data["forget"]), len(data["retain"])
    assert len(split) == n_f + int(0.3 * n_r)
    assert split.y.sum() == n_f  # flags: 1 for each forget sample
    assert set(split.indices[split.y == 1].tolist()) == set(data["forget"].indices.tolist())
    retain_part = split.indices[split.y == 0].tolist()
    assert len(set(retain_part)) == len(retain_part)
    assert set(retain_part) < set(data["retain"].indices.tolist())
    other = bad_teacher.unlearning_set(data["forget"], data["retain"], 0.3, seed=99)
    assert set(other.indices.tolist()) != set(split.indices.tolist())  # the subset is seeded


def test_bad_teacher_pulls_forget_outputs_toward_random_teacher(trained, data):
    ctx = make_ctx(seed=4)
    bad = reinitialised_copy(trained, seed=ctx.seed_for("incompetent_teacher"))  # the method's own teacher
    model = copy.deepcopy(trained)
    kl_before = forget_kl(model, bad, data["forget"], 1.0)
    method = bad_teacher.BadTeacher(epochs=20, lr=1e-2, batch_size=16)
    method.unlearn(model, granted(data["forget"], data["retain"], method.needs), ctx)
    kl_after = forget_kl(model, bad, data["forget"], 1.0)
    assert kl_after < 0.5 * kl_before, (kl_before, kl_after)
    good_kl = forget_kl(model, trained, data["retain"], 1.0)
    assert good_kl < forget_kl(model, trained, data["forget"], 1.0)  # retain outputs stay with the original


# --- Fisher forgetting ----------------------------------------------------------------------------


def noise_variance(fim, alpha: float, max_inverse: float, eps: float = 1e-8) -> dict:
    """The noise variance FisherForgetting adds: alpha * min(1 / (F + eps), max_inverse) per entry."""
    return {name: alpha * v for name, v in fisher.clamped_inverse(fim, max_inverse, eps).items()}


def test_fisher_noise_variance_is_alpha_times_clamped_inverse_fisher():
    model = mlp()
    gen = torch.Generator().manual_seed(1)
    # Fisher values from 1e-5 to 1e1: with the 1/F clamp at 100, small F hit the clamp, large F do not
    fim = {n: 10 ** (torch.rand(p.shape, generator=gen) * 6 - 5) for n, p in model.named_parameters()}
    alpha, max_inverse = 1e-4, 100.0
    variances = noise_variance(fim, alpha, max_inverse, eps=0.0)
    theta0 = torch.cat([p.detach().flatten() for p in model.parameters()])
    draws = []
    for seed in range(600):
        noisy = copy.deepcopy(model)
        fisher.add_gaussian_noise_(noisy, variances, seed)
        draws.append(torch.cat([p.detach().flatten() for p in noisy.parameters()]) - theta0)
    empirical = torch.stack(draws).double().var(0)
    inverse = torch.cat(
        [(1 / fim[n].double()).clamp(max=max_inverse).flatten() for n, _ in model.named_parameters()]
    )
    ratio = empirical / (alpha * inverse)
    clamped = inverse >= max_inverse * (1 - 1e-9)
    assert clamped.float().mean() > 0.2 and (~clamped).float().mean() > 0.2
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.02)
    assert float((ratio - 1).abs().max()) < 0.4  # 600 draws: each sample variance within ~7 sd


def test_fisher_variance_follows_alpha_including_the_clamped_entries(trained, data):
    split = granted(data["forget"], data["retain"], frozenset({"retain"}))
    # F on D_r spans ~1e-9..1e-6 here: a 1/F clamp at 5e7 (F < 2e-8) leaves both regimes populated
    noise, clamped = {}, []
    for alpha in (1e-9, 2e-9):
        ctx = make_ctx(seed=1)
        ctx.log = lambda metrics: clamped.append(metrics["fisher/clamped_fraction"])
        noisy = fisher.FisherForgetting(alpha=alpha, max_inverse_fisher=5e7).unlearn(
            copy.deepcopy(trained), split, ctx
        )
        noise[alpha] = torch.cat(
            [(p - p0).detach().flatten() for p, p0 in zip(noisy.parameters(), trained.parameters())]
        )
    assert 0.1 < clamped[0] < 0.9 and clamped[0] == clamped[1]
    # same seed, so the same draws z: the noise sqrt(alpha * v) * z scales by sqrt(2) everywhere
    torch.testing.assert_close(noise[2e-9], math.sqrt(2) * noise[1e-9], rtol=1e-3, atol=1e-9)


def test_fisher_unlearn_is_seeded_and_uses_retain_fisher(trained, data):
    method = fisher.FisherForgetting(
        alpha=1e-9, max_inverse_fisher=5e7
    )  # F here spans ~1e-9..1e-6: both regimes
    split = granted(data["forget"], data["retain"], method.needs)
    a = method.unlearn(copy.deepcopy(trained), split, make_ctx(seed=1))
    b = method.unlearn(copy.deepcopy(trained), split, make_ctx(seed=1))
    c = method.unlearn(copy.deepcopy(trained), split, make_ctx(seed=2))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    with pytest.raises(Exception, match="did not declare split 'forget'"):
        _ = split.forget
    # Standardised by the variance predicted from the per-sample Fisher on D_r, the noise is N(0, 1).
    retain = TensorBatches(data["retain"].x, data["retain"].y, 16)
    fim = mean_squared_gradients(copy.deepcopy(trained).eval(), retain, per_sample=True)
    variances = noise_variance(fim, 1e-9, 5e7)
    z = torch.cat(
        [
            ((pa - p0) / variances[n].sqrt()).detach().flatten()
            for (n, pa), p0 in zip(a.named_parameters(), trained.parameters())
        ]
    )
    assert len(z) > 300 and float(z.mean()) == pytest.approx(0.0, abs=0.2)
    assert float(z.var()) == pytest.approx(1.0, abs=0.25)
