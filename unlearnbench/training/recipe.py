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
    """Seed Python's, NumPy's and torch's global generators (what Lightning's seed_everything does), without
    importing Lightning: model initialisation draws from them."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # all devices


def build_optimizer(params, recipe: dict, **options) -> tuple[Any, Any]:
    """(optimiser over `params`, its per-epoch scheduler or None) from the recipe; `options` are passed to
    the optimiser's constructor (e.g. `fused=True`)."""
    from hydra.utils import instantiate

    optimizer = instantiate(recipe["optimizer"])(params, **options)
    scheduler = instantiate(recipe["scheduler"])(optimizer) if recipe.get("scheduler") is not None else None
    return optimizer, scheduler
