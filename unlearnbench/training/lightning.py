"""Training a classifier from scratch with a PyTorch Lightning Trainer (original and Retrain models)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from unlearnbench.runtime import RUNTIME_KEYS

log = logging.getLogger(__name__)

# Trainer fields that change the trained weights, hence belong in cache keys.
RESULT_AFFECTING_TRAINER_KEYS = ("precision", "limit_train_batches", "accumulate_grad_batches", "gradient_clip_val")


class LitClassifier(pl.LightningModule):
    """Cross-entropy training with SGD + cosine (or constant) schedule, logged under `stage/`."""

    def __init__(self, model: nn.Module, recipe: dict, stage: str = "original", generator: torch.Generator | None = None):
        super().__init__()
        self.model, self.recipe, self.stage, self.generator = model, recipe, stage, generator

    # The batch generator drives shuffling and augmentation: saving it makes a resumed run identical.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.generator is not None:
            checkpoint["batch_generator_state"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.generator is not None and "batch_generator_state" in checkpoint:
            self.generator.set_state(checkpoint["batch_generator_state"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log_dict({f"{self.stage}/train_loss": loss, f"{self.stage}/train_acc": acc}, prog_bar=True, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        acc = (self.model(x).argmax(1) == y).float().mean()
        self.log(f"{self.stage}/val_acc", acc, prog_bar=True, on_epoch=True)

    def configure_optimizers(self):
        r = self.recipe
        opt = torch.optim.SGD(
            self.model.parameters(), lr=r["lr"], momentum=r.get("momentum", 0.9),
            weight_decay=r.get("weight_decay", 5e-4), nesterov=r.get("nesterov", False),
        )
        if r.get("schedule", "cosine") == "constant":
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(r["epochs"])))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def trainer_kwargs(trainer_cfg: dict) -> dict[str, Any]:
    """The `trainer` config minus our runtime keys: exactly `pl.Trainer` arguments."""
    return {k: v for k, v in trainer_cfg.items() if k not in RUNTIME_KEYS and v is not None}


def fit(
    model: nn.Module,
    train_batches,
    val_batches,
    recipe: dict,
    trainer_cfg: dict,
    logger=None,
    stage: str = "original",
    root_dir: str | None = None,
    checkpoint_dir: Path | None = None,
) -> nn.Module:
    """Train `model` in place with Lightning and return it (in eval mode).

    With `checkpoint_dir`, a checkpoint is saved after every epoch and an interrupted training resumes
    from it (weights, optimiser, schedule and batch generator), giving the same weights as an
    uninterrupted run on CPU.
    """
    kwargs = trainer_kwargs(trainer_cfg)
    kwargs.setdefault("enable_model_summary", False)
    module = LitClassifier(model, recipe, stage, getattr(train_batches, "generator", None))
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    callbacks, resume = [], None
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="last", every_n_epochs=1,
                                         save_top_k=1, enable_version_counter=False, save_on_train_epoch_end=True))
        last = checkpoint_dir / "last.ckpt"
        resume = last if last.is_file() else None
    with warnings.catch_warnings():
        # Our batches are GPU-resident iterables, not DataLoaders: Lightning's worker hints do not apply.
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|DataLoader|bottleneck|log_every_n_steps|Precision|checkpoint).*")
        trainer = pl.Trainer(
            max_epochs=int(recipe["epochs"]), logger=logger if logger is not None else False,
            enable_checkpointing=checkpoint_dir is not None, callbacks=callbacks, default_root_dir=root_dir,
            num_sanity_val_steps=0, **kwargs,
        )
        if resume is not None:
            try:
                checkpoint = torch.load(resume, map_location="cpu", weights_only=True)
                if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
                    raise ValueError("not a Lightning checkpoint")
                log.info("resuming %s training from %s (epoch %s)", stage, resume, checkpoint.get("epoch"))
            except Exception as err:  # a checkpoint cut short by a kill: start over
                log.warning("ignoring unreadable checkpoint %s (%s); training from scratch", resume, err)
                resume.unlink(missing_ok=True)
                resume = None
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches, ckpt_path=resume,
                    weights_only=True)
    return model.eval()
