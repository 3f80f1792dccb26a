"""Methods that fine-tune on ascended, relabelled or masked objectives: NegGrad+, RL, l1-sparse, SalUn, Boundary
Shrink. Each test checks a defining property of the method's loop (every method's end-to-end run and split
access are checked in test_methods_contract.py)."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.core import build
from unlearnbench.data.batches import Augment, TensorBatches
from unlearnbench.data.splits import Split, Splits
from unlearnbench.errors import ConfigError
from unlearnbench.methods import neggrad_plus, salun
from unlearnbench.methods.base import GrantedSplits, UnlearnContext
from unlearnbench.methods.boundary_shrink import BoundaryShrink, neighbour_labels
from unlearnbench.methods.l1_sparse import gamma_schedule, l1_sparse_loss
from unlearnbench.methods.lib import relabel
from unlearnbench.methods.lib.relabel import random_wrong_labels, top_fraction_mask
from unlearnbench.methods.neggrad_plus import PairedBatches, neggrad_plus_loss
from unlearnbench.methods.random_label import RandomLabel
from unlearnbench.methods.salun import SalUn
from unlearnbench.runtime import Runtime

C = 3  # classes of the tiny synthetic problems

# ---------------------------------------------------------------- tiny data, model and context


def coded_split(name: str, ids: range, seed: int = 0) -> Split:
    """Samples whose first pixel is their id (so a batch says what it holds); other pixels random."""
    ids_t = torch.tensor(list(ids), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (len(ids_t), 1, 2, 2), generator=gen, dtype=torch.uint8)
    x[:, 0, 0, 0] = ids_t.to(torch.uint8)
    return Split(name, x, ids_t % C, ids_t)


def sample_ids(x: torch.Tensor) -> list[int]:
    return [round(v) for v in (x[:, 0, 0, 0] * 255).tolist()]


def tiny_setup(method, n_forget: int = 6, n_retain: int = 9):
    forget = coded_split("forget", range(n_forget))
    retain = coded_split("retain", range(100, 100 + n_retain), seed=1)
    train = Split(
        "train",
        torch.cat([forget.x, retain.x]),
        torch.cat([forget.y, retain.y]),
        torch.cat([forget.indices, retain.indices]),
    )
    splits = Splits(train=train, forget=forget, retain=retain, val=retain, test=retain, num_classes=C)
    ctx = UnlearnContext(
        runtime=Runtime(device=torch.device("cpu"), progress=False),
        seed=0,
        num_classes=C,
        forget_ratio=n_forget / len(train),
        forget_classes=None,
        augment=Augment(),
    )
    return GrantedSplits(splits, method.needs, "tiny"), ctx


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, C))


def grads(model: nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(model.parameters())))


# ---------------------------------------------------------------- NegGrad+


@pytest.mark.parametrize("beta", [0.999, 0.7])
def test_neggrad_plus_gradient_is_beta_retain_minus_one_minus_beta_forget(beta):
    model = tiny_model()
    gen = torch.Generator().manual_seed(1)
    x_f, x_r = torch.rand(5, 1, 2, 2, generator=gen), torch.rand(7, 1, 2, 2, generator=gen)
    y_f, y_r = torch.randint(0, C, (5,), generator=gen), torch.randint(0, C, (7,), generator=gen)
    combined = grads(model, neggrad_plus_loss(model, (x_f, x_r), (y_f, y_r), beta))
    g_r = grads(model, F.cross_entropy(model(x_r), y_r))
    g_f = grads(model, F.cross_entropy(model(x_f), y_f))
    for g, r, f in zip(combined, g_r, g_f):
        torch.testing.assert_close(g, beta * r - (1 - beta) * f)
    assert any(not torch.allclose(r, f) for r, f in zip(g_r, g_f))  # the two terms really differ


def test_neggrad_plus_retain_stream_carries_over_between_forget_epochs():
    forget = TensorBatches(*_xy(coded_split("f", range(4))), batch_size=2, shuffle=True, seed=1)
    retain = TensorBatches(*_xy(coded_split("r", range(100, 106))), batch_size=2, shuffle=True, seed=2)
    pairs = PairedBatches(forget, retain, "forget")
    assert len(pairs) == 2  # an epoch = one pass over D_f
    seen_forget, seen_retain = [], []
    for _epoch in range(3):
        for (x_f, x_r), (y_f, _y_r) in pairs:
            seen_forget.append(sample_ids(x_f))
            seen_retain.append(sample_ids(x_r))
            assert y_f.tolist() == [i % C for i in sample_ids(x_f)]
    # 6 steps of 2 retain samples: exactly two full passes over the 6 retain samples, in 3 batches each
    assert sorted(sum(seen_retain[:3], [])) == list(range(100, 106)) == sorted(sum(seen_retain[3:], []))
    assert len(PairedBatches(forget, retain, "retain")) == 3  # the authors' loop: one pass over D_r


def _xy(split: Split):
    return split.x, split.y


def test_neggrad_plus_defaults_run_plain_sgd_one_pass_over_d_r_per_epoch(make_cfg, monkeypatch):
    method = build(make_cfg(["method=neggrad_plus"]).method)  # the shipped defaults
    optimisers, steps, retain_ids = [], [], []
    real_sgd = neggrad_plus.sgd

    def counting_sgd(*args, **kwargs):
        opt = real_sgd(*args, **kwargs)
        real_step = opt.step

        def counted_step():
            real_step()
            steps.append(len(retain_ids))  # losses seen so far

        opt.step = counted_step
        optimisers.append(opt)
        return opt

    def spy_loss(model, x, y, beta):
        retain_ids.append(sample_ids(x[1]))
        return neggrad_plus_loss(model, x, y, beta)

    monkeypatch.setattr(neggrad_plus, "sgd", counting_sgd)
    monkeypatch.setattr(neggrad_plus, "neggrad_plus_loss", spy_loss)
    n_retain = 150  # 2 retain batches of 128 (the last one ragged); D_f (10) fits in one forget batch
    data, ctx = tiny_setup(method, n_forget=10, n_retain=n_retain)
    method.unlearn(tiny_model(), data, ctx)
    per_epoch = math.ceil(n_retain / 128)
    assert len(steps) == method.epochs * per_epoch and steps == list(range(1, len(steps) + 1))
    for epoch in range(method.epochs):  # each epoch sees every retain sample exactly once
        seen = sum(retain_ids[epoch * per_epoch : (epoch + 1) * per_epoch], [])
        assert sorted(seen) == list(range(100, 100 + n_retain))
    (group,) = optimisers[0].param_groups
    assert group["momentum"] == 0.0 and group["weight_decay"] == 0.0 and group["lr"] == 0.01


# ---------------------------------------------------------------- RL


def test_random_labels_always_differ_from_the_true_ones_and_are_seeded():
    def generator(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    y = torch.arange(3000) % 10
    labels = random_wrong_labels(y, 10, generator(0))
    assert (labels != y).all() and labels.min() >= 0 and labels.max() <= 9
    for c in range(10):  # every wrong class is drawn for every true class
        assert set(labels[y == c].tolist()) == set(range(10)) - {c}
    assert torch.equal(labels, random_wrong_labels(y, 10, generator(0)))
    assert not torch.equal(labels, random_wrong_labels(y, 10, generator(1)))


def test_rl_epoch_is_a_random_label_forget_pass_then_a_true_label_retain_pass(monkeypatch):
    steps: list[tuple[list[int], list[int]]] = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = tiny_model()

        def forward(self, x):
            self.last_ids = sample_ids(x)
            return self.net(x)

    model = Recorder()

    def spy_ce(logits, target):
        steps.append((model.last_ids, target.tolist()))
        return F.cross_entropy(logits, target)

    monkeypatch.setattr(relabel, "F", SimpleNamespace(cross_entropy=spy_ce))
    method = RandomLabel(epochs=2, lr=0.01, batch_size=4, augment=False)
    data, ctx = tiny_setup(method)
    method.unlearn(model, data, ctx)
    assert len(steps) == 2 * (2 + 3)  # per epoch: ceil(6/4) forget steps, ceil(9/4) retain steps
    for epoch in range(2):
        block = steps[epoch * 5 : (epoch + 1) * 5]
        for ids, targets in block[:2]:
            assert all(i < 100 for i in ids) and all(t != i % C for i, t in zip(ids, targets))
        for ids, targets in block[2:]:
            assert all(i >= 100 for i in ids) and targets == [i % C for i in ids]
    assert sorted(sum((ids for ids, _ in steps[:2]), [])) == list(range(6))


# ---------------------------------------------------------------- l1-sparse


def test_l1_gamma_decays_linearly_towards_zero():
    sched = gamma_schedule(5e-4, 10)
    assert sched[0] == pytest.approx(5e-4) and sched[-1] == pytest.approx(5e-5)
    assert [a - b for a, b in zip(sched, sched[1:])] == pytest.approx([5e-5] * 9)
    assert sched[-1] - 5e-5 == pytest.approx(0.0)  # one more step would reach exactly 0
    tail = gamma_schedule(6e-4, 10, no_l1_epochs=4)
    assert tail[6:] == [0.0] * 4 and tail[:6] == pytest.approx([6e-4 * (1 - t / 6) for t in range(6)])
    assert gamma_schedule(1e-3, 3, no_l1_epochs=3) == [0.0] * 3


def test_l1_sparse_loss_adds_gamma_times_the_l1_norm_of_every_parameter():
    model = tiny_model()
    x, y = torch.rand(8, 1, 2, 2), torch.arange(8) % C
    gamma = 0.01
    l1 = sum(float(p.detach().abs().sum()) for p in model.parameters())
    plain = float(F.cross_entropy(model(x), y).detach())
    assert float(l1_sparse_loss(model, x, y, gamma).detach()) == pytest.approx(plain + gamma * l1, rel=1e-6)
    with_l1 = grads(model, l1_sparse_loss(model, x, y, gamma))
    without = grads(model, l1_sparse_loss(model, x, y, 0.0))
    for p, a, b in zip(model.parameters(), with_l1, without):
        torch.testing.assert_close(a - b, gamma * p.detach().sign())


# ---------------------------------------------------------------- SalUn


def test_saliency_mask_is_one_global_top_fraction_of_absolute_scores():
    scores = {
        "big": torch.tensor([[-19.0, 18.0], [17.0, -16.0]]),
        "small": torch.tensor([1.0, -2.0, 3.0, 4.0]),
    }
    mask = top_fraction_mask(scores, 0.5)
    assert mask["big"].all() and not mask["small"].any()  # a per-tensor cut would keep half of each
    mask = top_fraction_mask(scores, 0.75)
    assert int(sum(m.sum() for m in mask.values())) == 6
    assert mask["small"].tolist() == [False, False, True, True]


def test_salun_changes_only_masked_weights_and_keeps_the_requested_fraction(monkeypatch):
    captured = {}

    def spy_mask(*args, **kwargs):
        captured["mask"] = relabel.saliency_mask(*args, **kwargs)
        return captured["mask"]

    monkeypatch.setattr(salun, "saliency_mask", spy_mask)
    # default weight decay and momentum on: neither may leak into the unmasked weights
    method = SalUn(epochs=3, lr=0.5, batch_size=16, augment=False, mask_fraction=0.3)
    data, ctx = tiny_setup(method)
    model = tiny_model()
    before = copy.deepcopy(model)
    method.unlearn(model, data, ctx)
    mask = captured["mask"]
    total = sum(p.numel() for p in model.parameters())
    assert int(sum(m.sum() for m in mask.values())) == round(0.3 * total)
    # the mask is the top 30% of |grad of -CE on D_f| (one batch here), recomputed independently
    x_f = data.forget.x.float() / 255
    g = torch.cat([t.abs().flatten() for t in grads(before, -F.cross_entropy(before(x_f), data.forget.y))])
    kept = torch.cat([mask[n].flatten() for n, _ in before.named_parameters()])
    assert g[kept].min() >= g[~kept].max() * (1 - 1e-5)
    moved = 0
    for (name, new), old in zip(model.named_parameters(), before.parameters()):
        assert torch.equal(new[~mask[name]], old[~mask[name]]), name  # bit-identical outside the mask
        moved += int((new[mask[name]] != old[mask[name]]).sum())
    assert moved > 0.9 * int(kept.sum())


def test_salun_rejects_a_bad_mask_fraction():
    with pytest.raises(ConfigError):
        SalUn(mask_fraction=0.0)
    with pytest.raises(ConfigError):
        SalUn(mask_fraction=1.5)


# ---------------------------------------------------------------- Boundary Shrink


def hand_linear_model() -> nn.Module:
    """logits = W x + b on 2 pixels with W = 10 * [[1, 0], [0, 1], [0, 0]], b = [0, -0.5, 4.8]."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 10.0], [0.0, 0.0]]))
        model[1].bias.copy_(torch.tensor([0.0, -0.5, 4.8]))
    return model.eval()


def test_boundary_shrink_relabels_to_the_fgsm_neighbours_class():
    # All three are class 0 and predicted 0. For y = 0 the input gradient of CE is
    # 10 * (p0 - 1, p1) = (-, +), so FGSM (eps 0.1) moves x to (x1 - 0.1, x2 + 0.1):
    #   (0.5, 0.5) -> (0.4, 0.6): logits (4, 5.5, 4.8) -> class 1 (the clean runner-up is class 2)
    #   (0.9, 0.5) -> (0.8, 0.6): logits (8, 5.5, 4.8) -> still 0; best other class 1
    #   (0.9, 0.3) -> (0.8, 0.4): logits (8, 3.5, 4.8) -> still 0; best other class 2
    x = torch.tensor([[0.5, 0.5], [0.9, 0.5], [0.9, 0.3]]).view(3, 1, 1, 2)
    y = torch.zeros(3, dtype=torch.long)
    model = hand_linear_model()
    assert model(x).argmax(1).tolist() == [0, 0, 0]
    assert neighbour_labels(model, x, y, 0.1).tolist() == [1, 0, 0]  # authors' rule: a failed attack keeps y
    assert neighbour_labels(model, x, y, 0.1, exclude_true_class=True).tolist() == [1, 1, 2]


def hand_forget_setup(method):
    """The three images above (as 8-bit pixels), all of class 0, as the whole forget set."""
    x_u8 = torch.tensor([[128, 128], [230, 128], [230, 77]], dtype=torch.uint8).view(3, 1, 1, 2)
    forget = Split("forget", x_u8, torch.zeros(3, dtype=torch.long), torch.arange(3))
    splits = Splits(train=forget, forget=forget, retain=forget, val=forget, test=forget, num_classes=C)
    ctx = UnlearnContext(
        runtime=Runtime(device=torch.device("cpu"), progress=False),
        seed=0,
        num_classes=C,
        forget_ratio=1.0,
        forget_classes=[0],
        augment=Augment(),
    )
    return GrantedSplits(splits, method.needs, "boundary_shrink"), ctx, x_u8.float() / 255


def test_boundary_shrink_fine_tunes_the_forget_images_onto_their_neighbour_labels(make_cfg):
    # the shipped defaults (argmax over all classes, no augmentation), with a fast fine-tune
    method = build(
        make_cfg(
            ["method=boundary_shrink", "method.epochs=50", "method.lr=1.0", "method.batch_size=3"]
        ).method
    )
    data, ctx, x = hand_forget_setup(method)
    model = method.unlearn(hand_linear_model(), data, ctx)
    # the attacked sample moves to its neighbour's class; the two failed attacks keep their true class
    # (excluding the true class would have sent them to classes 1 and 2)
    assert model(x).argmax(1).tolist() == [1, 0, 0]


@pytest.mark.parametrize("augment", [False, True])
def test_boundary_shrink_augments_the_forget_batches_only_when_asked(augment):
    method = BoundaryShrink(epochs=1, batch_size=3, augment=augment)
    data, ctx, _ = hand_forget_setup(method)
    requested = []

    def spy_batches(split, batch_size, **kwargs):
        requested.append(kwargs["augment"])
        return UnlearnContext.batches(ctx, split, batch_size, **kwargs)

    ctx.batches = spy_batches
    method.unlearn(hand_linear_model(), data, ctx)
    assert requested == [augment]


def test_boundary_shrink_runs_on_random_forgetting_as_in_salun_table_1(make_cfg):
    from unlearnbench import run

    res = run(
        make_cfg(
            ["method=boundary_shrink", "forget=random", "recipe.epochs=2", "method.epochs=1", "eval=fast"]
        )
    )
    assert res["status"] == "ok" and res["forget"]["scenario"] == "random"
