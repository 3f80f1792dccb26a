"""Evaluation metrics on hand-made outputs with known answers, shadow-model metrics on a fake
ShadowContext whose models return planted confidences, and one end-to-end `eval=full` run."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from unlearnbench.data.splits import Split, Splits
from unlearnbench.errors import ConfigError, UserError
from unlearnbench.evaluation import SplitOutputs
from unlearnbench.metrics.avg_gap import AvgGap
from unlearnbench.metrics.lib.attacks import lira_offline_scores, lira_scores
from unlearnbench.metrics.lib.shadows import CHALLENGE_SEED_BASE, half_masks
from unlearnbench.metrics.lira import LiRA
from unlearnbench.metrics.mia_entropy import MIAEntropy
from unlearnbench.metrics.mia_loss import MIALoss
from unlearnbench.metrics.neurips_score import NeurIPSScore
from unlearnbench.metrics.ulira import ULiRA
from unlearnbench.runner import run

ATTACK_KEYS = ("acc", "auc", "tpr@1%fpr", "tpr@0.1%fpr")


# ----------------------------------------------------------------------------- logistic MIAs


def outputs_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> SplitOutputs:
    return SplitOutputs(logits.float(), labels.long())


def confident(n: int, label_logit: float, correct: bool, gen: torch.Generator) -> SplitOutputs:
    """n 10-class outputs putting `label_logit` on the true class (correct) or on a wrong one."""
    labels = torch.randint(0, 10, (n,), generator=gen)
    logits = torch.randn(n, 10, generator=gen) * 0.1
    target = labels if correct else (labels + 1) % 10
    logits[torch.arange(n), target] += label_logit
    return outputs_from_logits(logits, labels)


def test_logistic_mias_are_near_half_for_identical_distributions():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(800, 10, generator=gen) * 2
    labels = torch.randint(0, 10, (800,), generator=gen)
    outputs = {
        "forget": outputs_from_logits(logits[:400], labels[:400]),
        "test": outputs_from_logits(logits[400:], labels[400:]),
    }
    for metric in (MIALoss(), MIAEntropy()):
        values = metric.per_model(outputs)
        assert abs(values[metric.key] - 0.5) < 0.1, metric.key
        assert values[f"{metric.key}_std"] == 0.0  # equal sets: nothing is subsampled, every draw is the same


def test_logistic_mias_are_one_for_separable_features():
    gen = torch.Generator().manual_seed(1)
    # Forget: confident and correct (low loss, low entropy); test: flat (high loss, high entropy).
    outputs = {"forget": confident(200, 12.0, True, gen), "test": confident(300, 0.0, True, gen)}
    assert MIALoss().per_model(outputs) == {"mia_loss": 1.0, "mia_loss_std": 0.0}
    assert MIAEntropy().per_model(outputs) == {"mia_entropy": 1.0, "mia_entropy_std": 0.0}


def test_loss_and_entropy_attacks_use_their_own_feature():
    gen = torch.Generator().manual_seed(2)
    # Equally confident (same entropy), but test predictions are wrong (high loss).
    outputs = {"forget": confident(200, 12.0, True, gen), "test": confident(200, 12.0, False, gen)}
    assert MIALoss().per_model(outputs)["mia_loss"] == 1.0
    assert abs(MIAEntropy().per_model(outputs)["mia_entropy"] - 0.5) < 0.15


def kit_mia_score(forget_losses: np.ndarray, test_losses: np.ndarray, shuffle) -> float:
    """The NeurIPS 2023 starting kit's notebook procedure (its `simple_mia` and the cell that calls it), with
    its `np.random.shuffle` of the larger set passed in as `shuffle`."""
    from sklearn import linear_model, model_selection

    if len(forget_losses) > len(test_losses):
        forget_losses = shuffle(forget_losses)[: len(test_losses)]
    else:
        test_losses = shuffle(test_losses)[: len(forget_losses)]
    samples_mia = np.concatenate((test_losses, forget_losses)).reshape((-1, 1))
    labels_mia = [0] * len(test_losses) + [1] * len(forget_losses)
    attack_model = linear_model.LogisticRegression()
    cv = model_selection.StratifiedShuffleSplit(n_splits=10, random_state=0)
    return model_selection.cross_val_score(
        attack_model, samples_mia, labels_mia, cv=cv, scoring="accuracy"
    ).mean()


def test_one_draw_is_the_kit_procedure_and_draws_report_their_spread():
    gen = torch.Generator().manual_seed(5)
    logits, labels = torch.randn(1050, 10, generator=gen) * 2, torch.randint(0, 10, (1050,), generator=gen)
    logits[torch.arange(150), labels[:150]] += (
        1.0  # the forget set a little better fitted: overlapping losses
    )
    outputs = {
        "forget": outputs_from_logits(logits[:150], labels[:150]),
        "test": outputs_from_logits(logits[150:], labels[150:]),
    }
    forget_losses = outputs["forget"].logits.log_softmax(1)[torch.arange(150), outputs["forget"].labels].neg()
    test_losses = outputs["test"].logits.log_softmax(1)[torch.arange(900), outputs["test"].labels].neg()
    for seed in (0, 3):
        kit = kit_mia_score(
            forget_losses.double().numpy(),
            test_losses.double().numpy(),
            lambda a, seed=seed: a[np.random.default_rng(seed).permutation(len(a))],
        )
        one = MIALoss(draws=1, seed=seed).per_model(outputs)
        assert one == {"mia_loss": pytest.approx(kit, abs=1e-12), "mia_loss_std": 0.0}
    many = MIALoss(draws=10).per_model(outputs)
    singles = [MIALoss(draws=1, seed=d).per_model(outputs)["mia_loss"] for d in range(10)]
    assert many["mia_loss"] == pytest.approx(np.mean(singles))
    assert many["mia_loss_std"] == pytest.approx(np.std(singles)) and many["mia_loss_std"] > 0.005


def test_class_wise_logistic_mias_face_the_forgotten_classes_test_images():
    gen = torch.Generator().manual_seed(6)
    # Forget and the forgotten classes' test images alike (a model that never saw the class); the remaining
    # classes' test images confident: against those, even such a model would look like it remembers.
    outputs = {
        "forget": confident(200, 0.0, True, gen),
        "test_forget": confident(200, 0.0, True, gen),
        "test": confident(600, 12.0, True, gen),
    }
    value = MIALoss().per_model(outputs)["mia_loss"]
    assert abs(value - 0.5) < 0.1
    assert MIALoss().per_model({k: outputs[k] for k in ("forget", "test")})["mia_loss"] == 1.0


def test_logistic_mia_info_and_bad_options():
    from unlearnbench.report.cells import describe_metric

    assert MIALoss().info()["mia_loss"]["ideal"] == 0.5
    legend = describe_metric("mia_loss", MIALoss().info()["mia_loss"])
    assert (
        legend.startswith("mia_loss: closer to 50 % in every scenario")
        and "forgotten classes' test" in legend
    )
    assert MIALoss().info()["mia_loss_std"]["spread_of"] == "mia_loss"
    assert MIAEntropy().info()["mia_entropy"]["ideal"] == 0.5
    with pytest.raises(ConfigError, match="eval.metrics.mia_entropy.n_splits"):
        MIAEntropy(n_splits=0)
    with pytest.raises(ConfigError, match="eval.metrics.mia_loss.draws"):
        MIALoss(draws=0)


# ----------------------------------------------------------------------------- avg gap


def test_avg_gap_is_the_mean_absolute_gap():
    unlearned = {
        "forget_acc": 0.90,
        "retain_acc": 0.95,
        "test_acc": 0.85,
        "mia_efficacy": 0.20,
        "val_acc": 0.0,
    }
    retrain = {"forget_acc": 0.80, "retain_acc": 0.97, "test_acc": 0.86, "mia_efficacy": 0.30, "val_acc": 1.0}
    out = AvgGap().compare(unlearned, retrain)
    assert out == {"avg_gap": pytest.approx((0.10 + 0.02 + 0.01 + 0.10) / 4)}
    assert AvgGap(components=["retain_acc"]).compare(unlearned, retrain) == {"avg_gap": pytest.approx(0.02)}
    assert AvgGap().info()["avg_gap"]["ideal"] == 0.0


def test_avg_gap_names_missing_components():
    with pytest.raises(UserError, match="mia_efficacy"):
        AvgGap().compare(
            {"forget_acc": 0.5, "retain_acc": 1, "test_acc": 1},
            {"forget_acc": 0.5, "retain_acc": 1, "test_acc": 1},
        )


def test_avg_gap_is_computed_for_doing_nothing_too_and_absent_without_retrain(make_cfg):
    res = run(make_cfg(["method=none", "recipe.epochs=2"]))
    assert res["original"]["metrics"]["avg_gap"] == pytest.approx(res["metrics"]["avg_gap"])
    assert "avg_gap" not in res["retrain"]["metrics"] and "avg_gap" not in res["gap"]
    without = run(make_cfg(["method=none", "recipe.epochs=2", "eval.retrain=false"], subdir="no_retrain"))
    assert "avg_gap" not in without["metrics"] and without["retrain"] is None


# ----------------------------------------------------------------------------- attack additions


def test_offline_lira_standardises_against_the_out_shadows_only():
    shadow = np.array([[1.0, 10.0], [3.0, 20.0], [100.0, 30.0]])
    out = np.array([[True, True], [True, True], [False, True]])  # shadow 2 trained on example 0
    z = lira_offline_scores([4.0, 20.0], shadow, out, min_count=2)
    # Example 0: out values {1, 3} -> mean 2, std 1; example 1: {10, 20, 30} -> mean 20.
    assert z[0] == pytest.approx(2.0) and z[1] == pytest.approx(0.0)


def test_lira_scores_with_an_explicit_out_mask_ignores_entries_in_neither_group():
    rng = np.random.default_rng(0)
    shadow = rng.normal(size=(6, 5))
    in_mask = np.zeros((6, 5), bool)
    in_mask[:2] = True
    out_mask = np.zeros((6, 5), bool)
    out_mask[2:4] = True  # rows 4-5 belong to neither group
    target = rng.normal(size=5)
    got = lira_scores(target, shadow, in_mask, shadow_out_mask=out_mask)
    np.testing.assert_allclose(got, lira_scores(target, shadow[:4], in_mask[:4]))
    assert not np.allclose(got, lira_scores(target, shadow, in_mask))  # rows 4-5 would change "out"


# ----------------------------------------------------------------------------- fake shadow context


class PlantedModel(nn.Module):
    """Two-class model whose logit-scaled confidence on sample id i (inputs x[:, 0]) is table[i]."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = self.table[x[:, 0].long()]
        return torch.stack([phi, torch.zeros_like(phi)], dim=1)  # label 0: phi = logit_0 - logit_1


def id_split(name: str, ids: range) -> Split:
    idx = torch.tensor(list(ids))
    return Split(name, idx[:, None].float(), torch.zeros(len(idx), dtype=torch.long), idx)


class World:
    """Planted confidences: per-sample difficulty mu (wide spread) + a shift + small noise per model.

    `retrained(keep, seed)`: forget samples where keep is True and test samples sit at mu; samples
    trained on at mu + train_shift. `unlearned(...)`: like a retrained model, plus `unlearn_shift` on
    the samples it forgot. Noise is seeded by (kind, seed), so equal calls give equal models.
    """

    def __init__(self, n_forget=120, n_test=150, n_retain=80, train_shift=2.0, unlearn_shift=0.0, noise=0.3):
        self.n_forget, self.n_test, self.n_retain = n_forget, n_test, n_retain
        self.n = n_forget + n_test + n_retain
        self.mu = torch.randn(self.n, generator=torch.Generator().manual_seed(123)) * 5
        self.train_shift, self.unlearn_shift, self.noise = train_shift, unlearn_shift, noise

    def splits(self) -> Splits:
        f, t = self.n_forget, self.n_forget + self.n_test
        retain = id_split("retain", range(t, self.n))
        return Splits(
            train=retain,
            forget=id_split("forget", range(f)),
            retain=retain,
            val=id_split("val", range(0)),
            test=id_split("test", range(f, t)),
            num_classes=2,
        )

    def table(self, forgot: torch.Tensor, seed: int, kind: str, shift_forgot: float = 0.0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed * 10 + ("retrained", "unlearned", "target").index(kind))
        trained = torch.zeros(self.n, dtype=torch.bool)
        trained[: self.n_forget] = ~forgot
        trained[self.n_forget + self.n_test :] = True
        table = self.mu + self.train_shift * trained + torch.randn(self.n, generator=gen) * self.noise
        table[: self.n_forget] += shift_forgot * forgot
        return table

    def retrained(self, keep, seed):
        return PlantedModel(self.table(keep, seed, "retrained"))

    def unlearned(self, keep, seed):
        return PlantedModel(self.table(keep, seed, "unlearned", self.unlearn_shift))


class FakeShadowContext:
    """The ShadowContext interface over a `World`; records every model request."""

    def __init__(self, world: World, models: dict, seed: int = 0):
        self.world, self.models, self.seed = world, models, seed
        self.splits = world.splits()
        self.runtime = SimpleNamespace(progress=False)
        self.hook = None
        self.calls: list[tuple] = []

    def predict(self, model, split):
        return SplitOutputs(model(split.x).detach(), split.y)

    def retrained(self, keep, seed):
        self.calls.append(("retrained", keep.clone(), seed))
        return self.world.retrained(keep, seed)

    def unlearned(self, keep, seed, original=None, hook_state=None):
        self.calls.append(("unlearned", keep.clone(), seed, original))
        return self.world.unlearned(keep, seed)

    def count(self, kind: str) -> int:
        return sum(call[0] == kind for call in self.calls)


def all_forgotten(world: World) -> torch.Tensor:
    return torch.ones(world.n_forget, dtype=torch.bool)


def lira_context(remembers: bool, with_retrain: bool = True) -> FakeShadowContext:
    """Target unlearned model that still looks trained on D_f (remembers) or looks retrained."""
    world = World()
    gone = all_forgotten(world)
    target = world.table(~gone if remembers else gone, 7, "target")
    models = {
        "unlearned": PlantedModel(target),
        "original": None,
        "retrain": world.retrained(gone, 99) if with_retrain else None,
    }
    return FakeShadowContext(world, models)


def test_lira_finds_a_planted_memory_and_not_its_absence():
    found = LiRA(num_shadows=8).with_shadows(lira_context(remembers=True))
    assert found["lira_acc"] > 0.95 and found["lira_auc"] > 0.98 and found["lira_tpr@1%fpr"] > 0.5
    clean = LiRA(num_shadows=8).with_shadows(lira_context(remembers=False))
    assert abs(clean["lira_auc"] - 0.5) < 0.12 and clean["lira_acc"] < 0.65
    # The Retrain model never saw D_f: its value is the ideal, near chance.
    assert abs(found["lira_auc_retrain"] - 0.5) < 0.12
    assert set(found) == {f"lira_{k}" for k in ATTACK_KEYS} | {"lira_acc_retrain", "lira_auc_retrain"}


def test_lira_without_retrain_reports_no_reference():
    out = LiRA(num_shadows=4).with_shadows(lira_context(remembers=True, with_retrain=False))
    assert "lira_acc_retrain" not in out and all(math.isfinite(v) for v in out.values())


def ulira_context(
    unlearn_shift: float, num_shadows_seed: int = 0, cls=FakeShadowContext
) -> FakeShadowContext:
    """Shadows and target unlearned model shifted by `unlearn_shift` on what they forgot."""
    world = World(unlearn_shift=unlearn_shift)
    gone = all_forgotten(world)
    models = {"unlearned": world.unlearned(gone, 7), "original": None, "retrain": world.retrained(gone, 99)}
    return cls(world, models, seed=num_shadows_seed)


def test_ulira_tells_a_planted_unlearned_model_from_retrain():
    out = ULiRA(num_shadows=16).with_shadows(ulira_context(unlearn_shift=1.5))
    assert out["ulira_acc"] > 0.95 and out["ulira_auc"] > 0.98 and out["ulira_tpr@1%fpr"] > 0.5
    assert set(out) == {f"ulira_{k}" for k in ATTACK_KEYS}


def test_ulira_is_near_chance_when_unlearning_equals_retraining():
    out = ULiRA(num_shadows=16).with_shadows(ulira_context(unlearn_shift=0.0))
    assert abs(out["ulira_acc"] - 0.5) < 0.1 and abs(out["ulira_auc"] - 0.5) < 0.12


def test_ulira_without_retrain_is_skipped_and_trains_nothing():
    ctx = lira_context(remembers=True, with_retrain=False)
    metric = ULiRA(num_shadows=4)
    before = metric.info()
    assert metric.with_shadows(ctx) == {}
    assert ctx.calls == []
    assert metric.info() == before  # what the metric says of itself does not change at run time
    assert "eval.retrain=true" in before["ulira_acc"]["requires"]


def test_lira_and_ulira_share_shadows_and_follow_the_protocol():
    ctx = ulira_context(unlearn_shift=1.0, num_shadows_seed=3)
    LiRA(num_shadows=4).with_shadows(ctx)
    ULiRA(num_shadows=4).with_shadows(ctx)
    assert ctx.count("retrained") == 4 and ctx.count("unlearned") == 4
    n = ctx.world.n_forget
    retrained = [c for c in ctx.calls if c[0] == "retrained"]
    unlearned = [c for c in ctx.calls if c[0] == "unlearned"]
    assert [c[2] for c in retrained] == [1000, 1001, 1002, 1003] == [c[2] for c in unlearned]
    for r, u in zip(retrained, unlearned):
        assert int(r[1].sum()) == n // 2 and torch.equal(r[1], u[1])  # same half F_k for both kinds
        assert u[3] is None  # the run's own original model
    assert len({tuple(c[1].tolist()) for c in retrained}) == 4
    # seed_offset: a new set of shadows (new masks and seeds), trained on top of the memoised ones.
    ULiRA(num_shadows=4, seed_offset=10).with_shadows(ctx)
    assert ctx.count("retrained") == 8 and [c[2] for c in ctx.calls[-4:]] == [1010, 1011, 1012, 1013]


class BatchingShadowContext(FakeShadowContext):
    """A context that serves whole families at once (ShadowContext.retrained_many)."""

    def retrained_many(self, keeps, seeds):
        self.calls.append(("retrained_many", list(seeds)))
        return (self.world.retrained(keep, seed) for keep, seed in zip(keeps, seeds))


def test_shadow_families_are_requested_at_once_with_the_same_results():
    one_by_one = ulira_context(unlearn_shift=1.0)
    at_once = ulira_context(unlearn_shift=1.0, cls=BatchingShadowContext)
    for metric in (LiRA(num_shadows=4), ULiRA(num_shadows=4), NeurIPSScore(num_shadows=3)):
        assert metric.with_shadows(at_once) == metric.with_shadows(one_by_one)
    assert [c for c in at_once.calls if c[0].endswith("_many")] == [
        ("retrained_many", [1000, 1001, 1002, 1003]),  # once: U-LiRA reuses LiRA's memoised outputs
        ("retrained_many", [2000, 2001, 2002]),
    ]
    assert at_once.count("retrained") == 0
    assert at_once.count("unlearned") == one_by_one.count("unlearned") == 4 + 3
    # A new set of shadows asks only for its own models.
    LiRA(num_shadows=4, seed_offset=10).with_shadows(at_once)
    assert at_once.calls[-1] == ("retrained_many", [1010, 1011, 1012, 1013])


def test_half_masks_are_exact_seeded_halves():
    a = half_masks(11, 6, run_seed=0)
    assert a.shape == (6, 11) and (a.sum(1) == 5).all()
    assert torch.equal(a, half_masks(11, 6, run_seed=0))
    assert not torch.equal(a, half_masks(11, 6, run_seed=1))
    assert torch.equal(half_masks(11, 6, run_seed=0, seed_offset=2)[0], a[2])  # offset shifts k
    # Every sample is forgotten by some shadow and kept by another.
    assert a.any(0).all() and (~a).any(0).all()


def test_shadow_options_are_checked():
    with pytest.raises(ConfigError, match="eval.metrics.lira.num_shadows"):
        LiRA(num_shadows=1)
    with pytest.raises(ConfigError, match="eval.metrics.ulira.num_shadows"):
        ULiRA(num_shadows=2.5)
    with pytest.raises(ConfigError, match="eval.metrics.neurips_score.seed_offset"):
        NeurIPSScore(seed_offset=-1)


class ChallengeWorld(World):
    """Unlearned model k = retrained model k+1 (mod N): per-example distributions are identical."""

    def __init__(self, num_models: int, forget_shift: float = 0.0, retain_wrong: float = 0.0, **kwargs):
        super().__init__(train_shift=3.0, **kwargs)
        self.mu = self.mu.abs() + 4.0  # every sample classified correctly (phi > 0)
        self.num_models, self.forget_shift, self.retain_wrong = num_models, forget_shift, retain_wrong

    def unlearned(self, keep, seed):
        next_seed = CHALLENGE_SEED_BASE + (seed - CHALLENGE_SEED_BASE + 1) % self.num_models
        table = self.table(keep, next_seed, "retrained").clone()
        table[: self.n_forget] += self.forget_shift
        n_wrong = int(self.retain_wrong * self.n_retain)
        table[
            self.n - self.n_retain : self.n - self.n_retain + n_wrong
        ] = -5.0  # misclassified retain samples
        return PlantedModel(table)


def challenge_context(num_models=6, **kwargs) -> FakeShadowContext:
    world = ChallengeWorld(num_models, **kwargs)
    return FakeShadowContext(world, {"unlearned": None, "original": None, "retrain": None})


def test_neurips_score_is_one_when_unlearned_and_retrained_confidences_match():
    ctx = challenge_context()
    out = NeurIPSScore(num_shadows=6).with_shadows(ctx)
    assert out == {"neurips_score": 1.0, "neurips_forget_score": 1.0}
    # The challenge's protocol: the run's one original unlearned with seeds 2000 + k, retrained with the same.
    unlearned = [c for c in ctx.calls if c[0] == "unlearned"]
    assert [c[2] for c in unlearned] == list(range(2000, 2006))
    assert all(c[3] is None and bool(c[1].all()) for c in unlearned)  # None: the run's own original
    assert [c[2] for c in ctx.calls if c[0] == "retrained"] == list(range(2000, 2006))


def test_neurips_score_drops_for_distinguishable_models_and_lost_retain_accuracy():
    far = NeurIPSScore(num_shadows=6).with_shadows(challenge_context(forget_shift=10.0))
    assert far["neurips_forget_score"] < 0.05 and far["neurips_score"] <= far["neurips_forget_score"]
    worse = NeurIPSScore(num_shadows=6).with_shadows(challenge_context(retain_wrong=0.25))
    assert worse["neurips_forget_score"] == 1.0
    assert worse["neurips_score"] == pytest.approx(0.75)  # RA ratio 0.75, TA ratio 1


def test_shadow_metric_info_states_direction_and_ideal():
    for metric in (LiRA(), ULiRA(), NeurIPSScore(), AvgGap(), MIALoss(), MIAEntropy()):
        for name, info in metric.info().items():
            assert "direction" in info and "ideal" in info, name
    assert NeurIPSScore().info()["neurips_score"]["ideal"] == 1.0


# ----------------------------------------------------------------------------- configs and end to end


def test_eval_presets(make_cfg):
    fast, standard, full = (make_cfg([f"eval={name}"]).eval for name in ("fast", "standard", "full"))
    assert set(fast.metrics) == {"accuracy"} and fast.retrain is False
    assert set(standard.metrics) >= {  # a new metric may join the default evaluation
        "accuracy",
        "mia_efficacy",
        "mia_loss",
        "mia_entropy",
        "avg_gap",
        "mia_efficacy_val",
        "tune_gap",
    }
    assert set(full.metrics) == set(standard.metrics) | {"lira", "ulira", "neurips_score"}
    assert full.retrain is True
    assert full.metrics.lira.num_shadows == 16 == full.metrics.neurips_score.num_shadows
    assert make_cfg(["eval=full", "eval.num_shadows=4"]).eval.metrics.ulira.num_shadows == 4


FULL_KEYS = (
    "forget_acc",
    "retain_acc",
    "test_acc",
    "mia_efficacy",
    "mia_loss",
    "mia_entropy",
    "avg_gap",
    *(f"lira_{k}" for k in ATTACK_KEYS),
    "lira_acc_retrain",
    *(f"ulira_{k}" for k in ATTACK_KEYS),
    "neurips_score",
    "neurips_forget_score",
)


def test_full_evaluation_end_to_end_and_shadows_come_from_the_cache(make_cfg, tmp_path):
    overrides = [
        "eval=full",
        "eval.metrics.lira.num_shadows=4",
        "eval.metrics.ulira.num_shadows=4",
        "eval.metrics.neurips_score.num_shadows=4",
        "recipe.epochs=2",
        "method=ft",
        "method.epochs=1",
    ]
    first = run(make_cfg(overrides))
    for key in FULL_KEYS:
        assert key in first["metrics"] and math.isfinite(first["metrics"][key]), key
        assert "ideal" in first["metric_info"][key], key
    for who in ("original", "retrain"):
        assert {"mia_loss", "mia_entropy"} <= set(first[who]["metrics"])
    cached = sorted(Path(tmp_path / "cache").rglob("*.pt"))
    # original + Retrain + 4 half-forget retrained + 4 challenge retrained (the challenge unlearns the original)
    assert len(cached) == 10

    cfg = make_cfg(overrides)
    cfg.paths.output_dir += "_again"
    second = run(cfg)
    assert sorted(Path(tmp_path / "cache").rglob("*.pt")) == cached  # every shadow model was a cache hit
    assert second["metrics"] == pytest.approx(first["metrics"])


def test_standard_evaluation_without_retrain_has_no_avg_gap(make_cfg):
    res = run(make_cfg(["eval.retrain=false", "recipe.epochs=1", "method=ga", "method.epochs=1"]))
    assert "avg_gap" not in res["metrics"] and 0.0 <= res["metrics"]["mia_loss"] <= 1.0
    assert res["metric_info"]["avg_gap"]["ideal"] == 0.0
    assert np.isfinite(res["metrics"]["mia_entropy"])


def test_class_wise_digits_retrain_loss_mia_is_near_its_stated_ideal(make_cfg):
    res = run(make_cfg(["method=none", "forget=class", "forget.classes=[0]", "recipe.epochs=3"]))
    ideal = res["metric_info"]["mia_loss"]["ideal"]
    assert abs(res["retrain"]["metrics"]["mia_loss"] - ideal) <= 0.10
    assert res["retrain"]["metrics"]["mia_loss_std"] >= 0.0
