"""The training recipe's optimiser and schedule (conf/recipe/*.yaml: `_partial_` configs) for any parameters."""

from __future__ import annotations

from typing import Any

# Optimisers whose update of each entry depends on that entry alone: stacking several models' parameters
# into one tensor (training/batched.py) leaves each model's update exactly as when trained alone.
ELEMENTWISE_OPTIMIZERS = (
    "torch.optim.SGD",
    "torch.optim.Adam",
    "torch.optim.AdamW",
    "torch.optim.RMSprop",
    "torch.optim.Adagrad",
)


# Trainer fields that change the trained weights, hence belong in cache keys.
RESULT_AFFECTING_TRAINER_KEYS = (
    "precision",
    "limit_train_batches",
    "accumulate_grad_batches",
    "gradient_clip_val",
)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators, as Lightning's seed_everything does: model
    initialisation draws from them.

    Our own because Lightning's means importing Lightning, which a run whose models are all cached otherwise
    never does: 1.6 s (three measurements, 1.58-1.63 s, after torch and torch._dynamo are imported) on the
    quiet 2-core development machine, 3.3-4.5 s under load.
    """
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # all devices


def build_optimizer(params, recipe: dict, total_steps: int | None = None, **options) -> tuple[Any, Any]:
    """(optimiser over `params`, its scheduler or None) from the recipe; `options` are passed to the
    optimiser's constructor (e.g. `fused=True`).

    The scheduler is stepped once per epoch, or once per batch with `scheduler_interval: step`; a per-step
    scheduler is built with the training's `total_steps`, as torch's OneCycleLR takes it.
    """
    from hydra.utils import instantiate

    optimizer = instantiate(recipe["optimizer"])(params, **options)
    if recipe.get("scheduler") is None:
        return optimizer, None
    factory = instantiate(recipe["scheduler"])
    if scheduler_interval(recipe) == "step":
        if not total_steps:
            raise ValueError("a per-step scheduler needs the training's number of steps")
        return optimizer, factory(optimizer, total_steps=int(total_steps))
    return optimizer, factory(optimizer)


def build_fast_optimizer(params, recipe: dict, total_steps: int | None = None):
    """`build_optimizer` with the optimiser's fused kernel where torch has one for the parameters' device and
    the recipe does not choose: one kernel for all tensors instead of several per tensor (SGD's update is the same,
    bit for bit)."""
    if not {"fused", "foreach"} & set(recipe["optimizer"]):
        try:
            return build_optimizer(params, recipe, total_steps, fused=True)
        except (TypeError, RuntimeError, ValueError):  # no fused kernel for this optimiser or device
            pass
    return build_optimizer(params, recipe, total_steps)


def scheduler_interval(recipe: dict) -> str:
    """`epoch` (default) or `step`: how often the recipe's scheduler is stepped."""
    interval = recipe.get("scheduler_interval", "epoch")
    if interval not in ("epoch", "step"):
        from unlearnbench.errors import ConfigError

        raise ConfigError("recipe.scheduler_interval", interval, "epoch or step")
    return interval


def label_smoothing(recipe: dict) -> float:
    """The recipe's cross-entropy label smoothing (default 0: plain cross-entropy)."""
    return float(recipe.get("label_smoothing", 0.0) or 0.0)
