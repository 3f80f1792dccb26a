"""What the training loops report per epoch: Lightning's (training/lightning.py) and the methods'
(methods/lib/common.py), read once per epoch rather than per step; the methods' SGD."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import CPU_TRAINER as TRAINER

from unlearnbench.data.batches import TensorBatches
from unlearnbench.data.sources import load_digits
from unlearnbench.methods.lib.common import DivergedError, EpochLoss, sgd
from unlearnbench.metrics.accuracy import accuracy
from unlearnbench.models.small import MLP
from unlearnbench.training.lightning import fit


class EpochValues:
    """A run logger (unlearnbench.loggers interface) that keeps what each epoch sends."""

    def __init__(self):
        self.rows = []

    def log_metrics(self, values: dict, step: int | None = None) -> None:
        self.rows.append(values)


def test_epoch_training_loss_and_accuracy_are_the_means_over_the_epochs_images(tmp_path):
    # lr 0: the model does not change, so the epoch's means are the loss and accuracy of the untrained model
    # on the whole training set, with the short last batch weighted by its size (100 = 3 x 32 + 4).
    raw = load_digits()
    x, y = raw.train_x[:100], raw.train_y[:100]
    torch.manual_seed(0)
    model = MLP(10, 1, 8, [0.3], [0.4], hidden=[16], activation="relu")
    with torch.no_grad():
        logits = model(x.float() / 255)
        loss, acc = F.cross_entropy(logits, y).item(), accuracy(logits, y).item()
    recipe = {
        "epochs": 2,
        "batch_size": 32,
        "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.0},
        "scheduler": None,
    }
    logger = EpochValues()
    fit(
        model,
        TensorBatches(x, y, 32, shuffle=True, seed=1),
        None,
        recipe,
        TRAINER,
        logger,
        root_dir=str(tmp_path),
    )
    assert [row["original/epoch"] for row in logger.rows] == [0, 1]
    for row in logger.rows:
        assert abs(row["original/train_loss"] - loss) < 1e-5
        assert abs(row["original/train_acc"] - acc) < 1e-6


def test_epoch_loss_is_the_mean_of_its_steps_and_a_non_finite_step_fails_it():
    epoch = EpochLoss()
    assert torch.isnan(torch.tensor(epoch.mean("empty")))
    for value in (1.0, 2.0, 6.0):
        epoch.add(torch.tensor(value, dtype=torch.bfloat16, requires_grad=True) * 1)
    assert epoch.mean("ft epoch 0") == pytest.approx(3.0)
    epoch.add(torch.tensor(float("nan")))
    epoch.add(torch.tensor(1.0))  # a later finite step does not hide it
    with pytest.raises(DivergedError, match="non-finite loss .* in ft epoch 0"):
        epoch.mean("ft epoch 0")


def _sgd_trajectory(make_optimizer, steps: int = 6) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = MLP(10, 1, 8, [0.3], [0.4], hidden=[16], activation="relu")
    model.head.bias.requires_grad_(False)  # frozen: never stepped
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params)
    data = torch.Generator().manual_seed(1)
    for step in range(steps):
        x, y = torch.rand(32, 1, 8, 8, generator=data), torch.randint(0, 10, (32,), generator=data)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if step in (1, 2):  # a parameter without a gradient in some steps keeps its momentum for later ones
            model.head.weight.grad = None
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 5e-4), (0.0, 0.0), (0.5, 0.0)])
def test_methods_sgd_is_torch_optim_sgd_over_the_trainable_parameters(momentum, weight_decay):
    """The methods' SGD (once an own kernel wrapper, tested bit for bit against this) is torch.optim.SGD."""

    def ours(params):
        opt = sgd(params, lr=0.1, momentum=momentum, weight_decay=weight_decay)
        assert isinstance(opt, torch.optim.SGD)
        return opt

    def torchs(params):
        return torch.optim.SGD(params, lr=0.1, momentum=momentum, weight_decay=weight_decay)

    mine, reference = _sgd_trajectory(ours), _sgd_trajectory(torchs)
    assert all(torch.equal(a, b) for a, b in zip(mine, reference, strict=True))
    assert not torch.equal(mine[0], _sgd_trajectory(ours, steps=0)[0])  # the steps did move the weights


class CountingOneCycle(torch.optim.lr_scheduler.OneCycleLR):
    """OneCycleLR that records what it was built with and each step's count."""

    built: list[int] = []
    counts: list[int] = []

    def __init__(self, optimizer, **kwargs):
        CountingOneCycle.built.append(kwargs["total_steps"])
        super().__init__(optimizer, **kwargs)

    def step(self, *args, **kwargs):
        super().step(*args, **kwargs)
        CountingOneCycle.counts.append(self.last_epoch)


def test_a_per_step_schedule_gets_the_trainings_steps_and_label_smoothing_enters_the_loss(tmp_path):
    raw = load_digits()
    x, y = raw.train_x[:100], raw.train_y[:100]  # 4 batches of 32 per epoch
    torch.manual_seed(0)
    model = MLP(10, 1, 8, [0.3], [0.4], hidden=[16], activation="relu")
    with torch.no_grad():
        smoothed = F.cross_entropy(model(x.float() / 255), y, label_smoothing=0.1).item()
    recipe = {
        "epochs": 2,
        "batch_size": 32,
        "label_smoothing": 0.1,
        "scheduler_interval": "step",
        "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.0},
        "scheduler": {"_target_": "test_training.CountingOneCycle", "_partial_": True, "max_lr": 0.0},
    }
    CountingOneCycle.built.clear(), CountingOneCycle.counts.clear()
    logger = EpochValues()
    fit(
        model,
        TensorBatches(x, y, 32, shuffle=True, seed=1),
        None,
        recipe,
        TRAINER,
        logger,
        root_dir=str(tmp_path),
    )
    assert CountingOneCycle.built == [8]
    assert max(CountingOneCycle.counts) == 8  # stepped after each of the 8 batches, not per epoch
    assert abs(logger.rows[0]["original/train_loss"] - smoothed) < 1e-5  # lr 0: the untrained model's loss


def test_a_bad_scheduler_interval_is_named():
    from unlearnbench.errors import ConfigError
    from unlearnbench.training.recipe import build_optimizer

    recipe = {"optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}, "scheduler": {}}
    with pytest.raises(ConfigError, match="recipe.scheduler_interval"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], {**recipe, "scheduler_interval": "batch"}, 4)


def test_the_duration_estimate_is_within_2x_of_the_training_and_its_advice_fits_anywhere(tmp_path, caplog):
    import time

    from unlearnbench.training import lightning

    raw = load_digits()
    x, y = raw.train_x[:640], raw.train_y[:640]  # 20 batches of 32 per epoch
    vx, vy = raw.test_x[:256], raw.test_y[:256]
    torch.manual_seed(0)
    model = MLP(10, 1, 8, [0.3], [0.4], hidden=[64], activation="relu")
    recipe = {
        "epochs": 40,  # long enough that the Trainer's one-off set-up (not estimated) is a small part
        "batch_size": 32,
        "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.05},
        "scheduler": None,
    }
    timings: dict = {}
    lightning.LONG_TRAINING_S, long_s = 0.0, lightning.LONG_TRAINING_S  # every training is announced
    try:
        with caplog.at_level("WARNING", logger="unlearnbench.training.lightning"):
            start = time.perf_counter()
            fit(
                model,
                TensorBatches(x, y, 32, shuffle=True, seed=1),
                TensorBatches(vx, vy, 64),
                recipe,
                TRAINER,
                root_dir=str(tmp_path),
                timings=timings,
            )
            took = time.perf_counter() - start
    finally:
        lightning.LONG_TRAINING_S = long_s
    assert 0.5 <= timings["estimate_s"] / took <= 2.0, (timings["estimate_s"], took)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("original: ~")]
    assert "on cpu (40 epochs)" in line and "recipe.epochs=1 takes" in line and "debug=fast" in line
    assert "experiment=" not in line  # no setting recommended: it may be the one running
