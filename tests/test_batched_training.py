"""Batched training of several models (training/batched.py): the same models as the sequential
Lightning path, resumable, refused where it cannot be exact; and its use for eval=full shadows
through the shared model cache."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
import torch
from conftest import CPU_TRAINER as TRAINER
from torch import nn

from unlearnbench import runner
from unlearnbench.data.batches import Augment, TensorBatches
from unlearnbench.data.sources import load_digits
from unlearnbench.models.small import MLP, SmallCNN
from unlearnbench.training import batched
from unlearnbench.training import models as trained_models
from unlearnbench.training.batched import fit_many, why_not_batched
from unlearnbench.training.cache import ModelCache
from unlearnbench.training.lightning import fit
from unlearnbench.training.recipe import build_fast_optimizer, seed_everything

SEEDS = (5, 6, 7)


def make_recipe(epochs: int, cosine: bool = True, **sgd) -> dict:
    """A conf/recipe/-shaped recipe: SGD (lr 0.05, momentum 0.9, wd 5e-4 unless given), cosine or constant."""
    optimizer = {
        "_target_": "torch.optim.SGD",
        "_partial_": True,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        **sgd,
    }
    scheduler = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "_partial_": True, "T_max": epochs}
    return {
        "epochs": epochs,
        "batch_size": 64,
        "optimizer": optimizer,
        "scheduler": scheduler if cosine else None,
    }


RECIPE = make_recipe(1)


def digits_subsets(n: int = 700):
    """Three different, equal-size training sets from the digits data (one per model)."""
    raw = load_digits()
    subsets = [
        torch.randperm(len(raw.train_y), generator=torch.Generator().manual_seed(s))[:n] for s in SEEDS
    ]
    return [(raw.train_x[i], raw.train_y[i]) for i in subsets]


def streams(data, augment, batches_cls=TensorBatches):
    return [batches_cls(x, y, 64, shuffle=True, augment=augment, seed=s) for (x, y), s in zip(data, SEEDS)]


def seeded_models(make):
    models = []
    for seed in SEEDS:
        seed_everything(seed)  # init exactly as TrainedModels.trained does
        models.append(make())
    return models


def mlp():
    return MLP(10, 1, 8, [0.3], [0.4], hidden=[32], activation="relu")


def max_diff(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.mark.parametrize(
    "make, recipe, limit, tol",
    [
        (mlp, make_recipe(2), None, 1e-6),
        (mlp, make_recipe(2, cosine=False, nesterov=True), 3, 1e-6),
        # BatchNorm: per-model batch and running statistics. Two steps only: a few BN channels are badly
        # conditioned on digits, and float rounding (in either path) grows quickly over more steps.
        (lambda: SmallCNN(10, 1, [0.3], [0.4], width=8), make_recipe(1), 2, 1e-4),
    ],
)
def test_batched_training_gives_the_models_of_sequential_training(tmp_path, make, recipe, limit, tol):
    trainer = {**TRAINER, "limit_train_batches": limit}
    data, augment = digits_subsets(), Augment(crop_padding=1, flip=True)
    sequential = []
    for model, batches in zip(seeded_models(make), streams(data, augment)):
        fit(model, batches, None, recipe, trainer, root_dir=str(tmp_path))
        sequential.append(model.state_dict())

    together = fit_many(seeded_models(make), streams(data, augment), recipe, trainer)
    for seq, bat in zip(sequential, together):
        assert seq.keys() == bat.keys()
        assert max_diff(seq, bat) < tol
    assert max_diff(together[0], together[1]) > 1e-2  # the models really differ (seed, data, order)
    if limit is not None:
        assert all(
            int(v) == limit * recipe["epochs"] for k, v in together[0].items() if "num_batches_tracked" in k
        )


class ToDtype(nn.Module):
    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


def test_stacked_batchnorm_of_bf16_activations_normalises_in_float32(monkeypatch):
    # What bf16 autocast does on a GPU: a bf16 activation into a BatchNorm with float32 statistics, a mix
    # that fails under vmap on CUDA. (On a CPU autocast does not act inside vmap, so the cast is explicit.)
    seen = []
    batch_norm = torch.nn.functional.batch_norm

    def recording(x, *args, **kwargs):
        seen.append(x.dtype)
        return batch_norm(x, *args, **kwargs)

    def make():
        return nn.Sequential(
            nn.Conv2d(1, 4, 3),
            ToDtype(torch.bfloat16),
            nn.BatchNorm2d(4),
            ToDtype(torch.float32),
            nn.Flatten(),
            nn.Linear(4 * 6 * 6, 10),
        )

    monkeypatch.setattr(torch.nn.functional, "batch_norm", recording)
    trained = fit_many(
        seeded_models(make), streams(digits_subsets(128), None), RECIPE, {**TRAINER, "limit_train_batches": 2}
    )
    assert seen and set(seen) == {torch.float32}
    assert all(int(m["2.num_batches_tracked"]) == 2 for m in trained)
    assert all(torch.isfinite(v).all() for m in trained for v in m.values())


def relabel_some(x, y, gen):
    """A training hook that draws after the augmentation: a random half of the batch gets label 0."""
    return x, torch.where(torch.rand(len(y), generator=gen) < 0.5, 0, y)


@pytest.mark.parametrize(
    "augment, hook", [(Augment(2, True), None), (Augment(0, True), relabel_some), (None, relabel_some)]
)
def test_lockstep_batches_are_each_streams_batches_alone(augment, hook):
    x = torch.randint(0, 256, (90, 1, 8, 8), dtype=torch.uint8)
    y = torch.randint(1, 10, (90,))

    def make():  # each stream its own data order, augmentation and hook draws (seeds 0, 1, 2)
        return [TensorBatches(x, y, 16, shuffle=True, augment=augment, seed=s, hook=hook) for s in range(3)]

    alone = [list(s) for s in make()]
    together = list(batched.lockstep(make()))
    assert len(together) == len(alone[0]) == 6
    for step, (xs, ys) in enumerate(together):
        for k in range(3):
            assert torch.equal(xs[k], alone[k][step][0]) and torch.equal(ys[k], alone[k][step][1])
    assert not torch.equal(together[0][0][0], together[0][0][1])  # the streams differ
    if hook is not None:
        assert (together[0][1] == 0).any()


def test_fast_optimiser_is_fused_where_torch_has_a_kernel_and_the_recipe_does_not_choose():
    params = [torch.zeros(3, 4, requires_grad=True)]

    def fused(**optimizer):
        recipe = {"optimizer": {"_partial_": True, "lr": 0.1, **optimizer}, "scheduler": None}
        return build_fast_optimizer(params, recipe)[0].defaults.get("fused")

    assert fused(_target_="torch.optim.SGD", momentum=0.9) is True
    assert not fused(_target_="torch.optim.SGD", foreach=True)  # the recipe's choice stands
    assert fused(_target_="torch.optim.RMSprop") is None  # no fused kernel: the plain optimiser


class InterruptedBatches(TensorBatches):
    """Batches that stop the process (as a kill would) when the second epoch starts."""

    epochs_started = 0

    def draws(self):  # where the batched trainer starts each stream's epoch
        self.epochs_started += 1
        if self.epochs_started == 2:
            raise KeyboardInterrupt
        yield from super().draws()


def test_interrupted_batched_training_resumes_to_the_same_models(tmp_path):
    recipe = make_recipe(3, momentum=0.0, weight_decay=0.0)
    trainer = {**TRAINER, "limit_train_batches": 4}
    data, augment = digits_subsets(300), Augment(crop_padding=1, flip=True)
    whole = fit_many(seeded_models(mlp), streams(data, augment), recipe, trainer)

    with pytest.raises(KeyboardInterrupt):
        fit_many(
            seeded_models(mlp),
            streams(data, augment, InterruptedBatches),
            recipe,
            trainer,
            checkpoint_dir=tmp_path,
        )
    assert (tmp_path / "last.pt").is_file()
    with mock.patch.object(batched, "_save", wraps=batched._save) as saved:
        resumed = fit_many(
            seeded_models(mlp), streams(data, augment), recipe, trainer, checkpoint_dir=tmp_path
        )
    assert [c.args[1] for c in saved.call_args_list] == [2, 3]  # epoch 1 was not trained again
    for a, b in zip(whole, resumed):
        assert max_diff(a, b) == 0.0


def test_models_and_trainer_options_that_cannot_be_batched_are_named():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert why_not_batched(mlp(), TRAINER, cpu, RECIPE) is None
    assert (
        why_not_batched(SmallCNN(10, 1, [0.3], [0.4]), TRAINER, cpu, RECIPE) is None
    )  # BatchNorm buffers are stacked
    assert "Dropout" in why_not_batched(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)), TRAINER, cpu, RECIPE)
    lars_like = {**RECIPE, "optimizer": {"_target_": "some.lib.LARS", "_partial_": True}}
    assert "couple" in why_not_batched(
        mlp(), TRAINER, cpu, lars_like
    )  # per-tensor norms would mix the models
    assert "gradient_clip_val" in why_not_batched(mlp(), {**TRAINER, "gradient_clip_val": 1.0}, cpu, RECIPE)
    assert why_not_batched(mlp(), {**TRAINER, "accumulate_grad_batches": 1}, cpu, RECIPE) is None
    bf16 = {**TRAINER, "precision": "bf16-mixed"}
    assert why_not_batched(mlp(), bf16, gpu, RECIPE) is None  # Runtime.autocast does what Lightning does
    assert "bf16-mixed on cpu" in why_not_batched(
        mlp(), bf16, cpu, RECIPE
    )  # Lightning would autocast on the CPU
    assert "16-mixed" in why_not_batched(
        mlp(), {**TRAINER, "precision": "16-mixed"}, gpu, RECIPE
    )  # gradient scaler


def test_create_many_builds_only_the_absent_entries_once(tmp_path):
    cache = ModelCache(tmp_path)
    specs = [{"model": k} for k in (0, 1, 2, 1)]
    cache.get_or_create("shadow", specs[1], lambda: {"w": torch.tensor(1.0)})
    asked = []

    def create(todo):
        asked.append(todo)
        return [{"w": torch.tensor(float(specs[i]["model"]))} for i in todo]

    assert cache.create_many("shadow", specs, create) == [0, 2]  # entry 1 exists; the repeat is one entry
    assert asked == [[0, 2]]
    assert cache.create_many("shadow", specs, create) == [] and asked == [[0, 2]]
    payload, hit = cache.get_or_create("shadow", specs[2], lambda: pytest.fail("should be cached"))
    assert hit.hit and payload["w"].item() == 2.0


SHADOW_RUN = ["eval=full", "recipe.epochs=1", "trainer.limit_train_batches=4", "method=ft", "method.epochs=1"]


def test_eval_full_batched_and_sequential_shadows_share_the_cache(make_cfg, tmp_path, caplog):
    def cfg(n, *extra, subdir):
        c = make_cfg([*SHADOW_RUN, f"eval.num_shadows={n}", *extra], subdir=subdir)
        c.paths.cache_dir = str(tmp_path / "cache")  # one cache for all three runs
        return c

    # 1. One at a time, 2 shadows per family.
    run(cfg(2, "eval.batched_shadows=false", subdir="one"), groups=[])
    # 2. Batched, 3 shadows: the 2 of run 1 come from the cache, only the third of each family is trained.
    groups = []
    second = run(cfg(3, subdir="two"), groups=groups)
    assert groups == [1, 1]  # half-forget retrained, challenge retrained
    # 3. Data streamed from host memory cannot be batched (logged); every model is a cache hit.
    with (
        caplog.at_level(logging.INFO, logger="unlearnbench.training.models"),
        mock.patch("unlearnbench.training.lightning.fit", side_effect=AssertionError("trained again")),
    ):
        third = run(
            cfg(3, "runtime.data_on_device=false", "runtime.num_workers=0", subdir="three"), groups=[]
        )
    assert "trained one at a time, not batched: the data is streamed" in caplog.text
    assert third["metrics"] == second["metrics"]


def run(cfg, groups: list):
    """runner.run, recording the size of every batched group trained."""

    def spy(models, *args, **kwargs):
        groups.append(len(models))
        return fit_many(models, *args, **kwargs)

    with mock.patch.object(trained_models, "fit_many", side_effect=spy):
        return runner.run(cfg)
