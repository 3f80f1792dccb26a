"""What the training loops report per epoch: Lightning's (training/lightning.py) and the methods'
(methods/common.py), read once per epoch rather than per step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import CPU_TRAINER as TRAINER

from unlearnbench.data.batches import TensorBatches
from unlearnbench.data.sources import load_digits
from unlearnbench.methods.common import DivergedError, EpochLoss
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
