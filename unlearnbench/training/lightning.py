"""Training a classifier from scratch with a PyTorch Lightning Trainer (original and Retrain models)."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from unlearnbench.metrics.accuracy import accuracy
from unlearnbench.progress import EpochLines
from unlearnbench.training.recipe import (
    build_fast_optimizer,
    build_optimizer,
    label_smoothing,
    scheduler_interval,
)

log = logging.getLogger(__name__)


class LitClassifier(pl.LightningModule):
    """Cross-entropy training with the recipe's optimiser and schedule, logged under `stage/`.

    With `compile` (torch.compile's keyword arguments), training steps run the compiled model; it is kept
    outside the module's children, so checkpoints and the state dict hold the plain model's keys.
    """

    def __init__(
        self,
        model: nn.Module,
        recipe: dict,
        stage: str = "original",
        generator: torch.Generator | None = None,
        compile: dict | None = None,
    ):
        super().__init__()
        self.model, self.recipe, self.stage, self.generator = model, recipe, stage, generator
        self.label_smoothing = label_smoothing(recipe)
        object.__setattr__(self, "train_forward", torch.compile(model, **compile) if compile else model)

    # The batch generator drives shuffling and augmentation: saving it makes a resumed run identical.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.generator is not None:
            checkpoint["batch_generator_state"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.generator is not None and "batch_generator_state" in checkpoint:
            self.generator.set_state(checkpoint["batch_generator_state"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _log(self, name: str, value: torch.Tensor) -> None:
        # Short names on the progress bar (no "original/train_l…"), the stage-prefixed ones in the logger.
        self.log(name, value, prog_bar=True, logger=False, on_epoch=True, on_step=False)
        self.log(f"{self.stage}/{name}", value, on_epoch=True, on_step=False)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.train_forward(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        # The epoch's means are summed on the device and logged once, at its last batch: a `self.log` per
        # step costs Lightning about a millisecond of Python, as much as a small model's whole step.
        n = len(y)
        sums = torch.stack([loss.detach() * n, accuracy(logits, y) * n])
        self._epoch_sums = sums if batch_idx == 0 else self._epoch_sums + sums
        self._epoch_count = n if batch_idx == 0 else self._epoch_count + n
        if batch_idx == self.trainer.num_training_batches - 1:
            mean_loss, mean_acc = self._epoch_sums / self._epoch_count
            self._log("train_loss", mean_loss)
            self._log("train_acc", mean_acc)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._log("val_acc", accuracy(self.model(x), y))

    def configure_optimizers(self):
        steps = int(self.trainer.estimated_stepping_batches)
        if self.device.type == "cuda":  # the fused kernel: one launch per step for all parameters
            optimizer, scheduler = build_fast_optimizer(self.model.parameters(), self.recipe, steps)
        else:
            optimizer, scheduler = build_optimizer(self.model.parameters(), self.recipe, steps)
        if scheduler is None:
            return {"optimizer": optimizer}
        interval = scheduler_interval(self.recipe)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}


# A training expected to take longer than this (seconds) is announced with its estimated duration.
LONG_TRAINING_S = 600.0


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


class StepClock(pl.Callback):
    """Times training steps with as few waits for the GPU as possible, for two reports:

    - the training's estimated duration, said in one line when it is long (with the way to a quick run), so
      nobody waits 40 hours on a CPU without knowing: steps 2 to `probe_steps` + 1 give the steady step time;
    - `compile_s`, what the first step of each batch shape costs beyond a steady step: torch.compile's
      compilation (and one-off set-up) when the training is compiled. Only those steps are waited for.
    """

    def __init__(self, stage: str, probe_steps: int = 5, compiled: bool = False):
        self.stage, self.probe_steps, self.compiled = stage, probe_steps, compiled
        self.steps, self.start, self.step_s, self.estimate_s = 0, 0.0, None, None
        self.shapes: set[tuple] = set()
        self.new_shape_s: list[float] = []
        self.shape_start: float | None = None

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":  # the host queues steps ahead of the GPU: wait for them
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    @property
    def compile_s(self) -> float:
        steady = (self.step_s or 0.0) * len(self.new_shape_s)
        return max(0.0, sum(self.new_shape_s) - steady)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        shape = tuple(batch[0].shape)
        if self.compiled and shape not in self.shapes:
            self.shapes.add(shape)
            self.shape_start = self._now(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        if self.shape_start is not None:
            self.new_shape_s.append(self._now(pl_module) - self.shape_start)
            self.shape_start = None
        if self.steps == 1:  # the first step pays one-off costs (allocation, kernel selection, compilation)
            self.start = self._now(pl_module)
        elif self.steps == self.probe_steps + 1:
            self.step_s = (self._now(pl_module) - self.start) / self.probe_steps
            self._announce(trainer, pl_module.device.type)

    def _announce(self, trainer, device: str) -> None:
        train_steps = trainer.num_training_batches * trainer.max_epochs - self.steps
        try:  # a validation batch is a forward pass only: about a third of a training step
            val_steps = sum(trainer.num_val_batches) * trainer.max_epochs / 3
        except TypeError:
            val_steps = 0
        self.estimate_s = self.step_s * (train_steps + val_steps)
        if self.estimate_s > LONG_TRAINING_S:
            log.warning(
                "%s: ~%s on %s (%d epochs); %s",
                self.stage,
                _duration(self.estimate_s),
                device,
                trainer.max_epochs,
                _quicker(self.estimate_s / trainer.max_epochs, trainer.max_epochs, device),
            )


def _quicker(epoch_s: float, epochs: int, device: str) -> str:
    """The ways to a quicker run from here, whatever the setting: fewer epochs, a smoke run, a GPU."""
    fit = max(
        1, int(LONG_TRAINING_S / 2 / max(epoch_s, 1e-9))
    )  # the epochs that take half the long threshold
    ways = [f"recipe.epochs={fit} takes ~{_duration(fit * epoch_s)}"] if fit < epochs else []
    ways.append("debug=fast checks the setting in seconds")
    if device == "cpu":
        ways.append(
            "trainer=gpu uses the visible GPU"
            if torch.cuda.is_available()
            else "trainer=gpu on a GPU machine"
        )
    return ", ".join(ways)


class EpochLog(pl.Callback):
    """Without a progress bar: a logged line per epoch (progress.EpochLines) with its training loss and
    accuracy, and the validation accuracy when there is one."""

    def __init__(self, stage: str, epochs: int):
        self.stage, self.lines = stage, EpochLines(f"training {stage}", epochs)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        values = {k: float(metrics[k]) for k in ("train_loss", "train_acc", "val_acc") if k in metrics}
        self.lines.update(trainer.current_epoch, **values)


class ForwardMetrics(pl.Callback):
    """Sends each epoch's logged values (`<stage>/train_loss`, ...) to the run's logger (unlearnbench.loggers)."""

    def __init__(self, run_logger, stage: str):
        self.run_logger, self.stage = run_logger, stage

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{self.stage}/")}
        self.run_logger.log_metrics(
            {**values, f"{self.stage}/epoch": trainer.current_epoch}, step=trainer.current_epoch
        )


def make_trainer(trainer_cfg: dict, **run_args: Any) -> pl.Trainer:
    """The `trainer` config is a `pl.Trainer` node (`_target_`); `run_args` are what this training adds."""
    from hydra.utils import instantiate

    return instantiate(trainer_cfg, **run_args)


def fit(
    model: nn.Module,
    train_batches,
    val_batches,
    recipe: dict,
    trainer_cfg: dict,  # a `pl.Trainer` node (conf/trainer/)
    logger=None,  # an unlearnbench.loggers.RunLogger, given each epoch's training values
    stage: str = "original",
    root_dir: str | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 1,
    compile: dict | None = None,
    timings: dict | None = None,
) -> nn.Module:
    """Train `model` in place with Lightning and return it (in eval mode).

    With `checkpoint_dir`, a checkpoint is saved every `checkpoint_every` epochs and an interrupted training
    resumes from the last one (weights, optimiser, schedule and batch generator), giving the same weights as
    an uninterrupted run on CPU. `compile`: torch.compile's arguments for the training steps (None: eager).
    `timings`, when given, receives `step_s` (a steady step) and `compile_s` (see `StepClock`).
    """
    module = LitClassifier(model, recipe, stage, getattr(train_batches, "generator", None), compile)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    clock = StepClock(stage, compiled=bool(compile))
    callbacks = [clock, *_reporting(logger, stage, trainer_cfg, int(recipe["epochs"]))]
    if checkpoint_dir is not None:
        callbacks.append(_checkpointing(Path(checkpoint_dir), checkpoint_every))
    with _without_upstream_noise():
        trainer = make_trainer(
            trainer_cfg,
            max_epochs=int(recipe["epochs"]),
            logger=False,
            enable_checkpointing=checkpoint_dir is not None,
            callbacks=callbacks,
            default_root_dir=root_dir,
        )
        resume = _resumable(Path(checkpoint_dir) / "last.ckpt", stage) if checkpoint_dir is not None else None
        trainer.fit(
            module,
            train_dataloaders=train_batches,
            val_dataloaders=val_batches,
            ckpt_path=resume,
            weights_only=True,
        )
    if timings is not None:
        timings.update(
            step_s=clock.step_s, compile_s=clock.compile_s if compile else 0.0, estimate_s=clock.estimate_s
        )
    return model.eval()


def _reporting(logger, stage: str, trainer_cfg: dict, epochs: int) -> list[pl.Callback]:
    """Each epoch's values to the run's logger, and without a progress bar a logged line per epoch."""
    callbacks: list[pl.Callback] = []
    if logger is not None:
        callbacks.append(ForwardMetrics(logger, stage))
    if not trainer_cfg.get("enable_progress_bar", True):
        callbacks.append(EpochLog(stage, epochs))
    return callbacks


def _checkpointing(checkpoint_dir: Path, every: int) -> ModelCheckpoint:
    """`<checkpoint_dir>/last.ckpt`, rewritten every `every` epochs."""
    return ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="last",
        every_n_epochs=max(1, int(every)),
        save_top_k=1,
        enable_version_counter=False,
        save_on_train_epoch_end=True,
    )


def _resumable(last: Path, stage: str) -> Path | None:
    """`last` when it is a readable Lightning checkpoint to resume from; one cut short by a kill is deleted."""
    if not last.is_file():
        return None
    try:
        checkpoint = torch.load(last, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise ValueError("not a Lightning checkpoint")
    except Exception as err:  # a checkpoint cut short by a kill: start over
        log.warning("ignoring unreadable checkpoint %s (%s); training from scratch", last, err)
        last.unlink(missing_ok=True)
        return None
    log.info("resuming %s training from %s (epoch %s)", stage, last, checkpoint.get("epoch"))
    return last


@contextlib.contextmanager
def _without_upstream_noise():
    """Lightning's warnings that do not apply here, silenced while it trains."""
    with warnings.catch_warnings():
        # Our batches are GPU-resident iterables, not DataLoaders: Lightning's worker hints do not apply.
        warnings.filterwarnings(
            "ignore",
            message=".*(num_workers|does not have many workers|DataLoader|bottleneck|log_every_n_steps|Precision|checkpoint).*",
        )
        # Upstream noise on every run: Lightning's own use of a deprecated torch pytree API, and its hint to
        # use `srun` wherever Slurm is installed (our Slurm jobs are started by submitit, not srun).
        warnings.filterwarnings(
            "ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning
        )
        warnings.filterwarnings("ignore", message="The `srun` command is available on your system")
        yield
