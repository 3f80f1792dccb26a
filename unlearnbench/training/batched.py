"""Training K models of one architecture together: parameters stacked, one vmapped step for all.

Shadow-model metrics (LiRA, U-LiRA, the NeurIPS challenge score) need tens of models that differ only
in seed and training split. Trained one by one, each small model leaves a GPU mostly idle and pays
the framework's per-step overhead; stacked (`torch.func.stack_module_state`) and stepped with one
`vmap` of `functional_call`, K models train as one wider model. On a CPU, where the matrix products
cost the same either way, only the per-model overhead is saved: the trainer's, and each step's batch
conversion and augmentation, done once for all K (docs/benchmarks.md).

Each model gets what `lightning.fit` would give it alone:
- its own initialisation (the caller seeds before constructing each model, as `TrainedModels.trained` does);
- its own batch stream (order, augmentation and hook draws from its own generator: the streams are
  iterated in lockstep, so every generator draws exactly as when iterated alone);
- its own batch statistics and running statistics (buffers such as BatchNorm's are stacked too);
- its own SGD update: the loss is the sum over models of each model's mean cross-entropy, so its
  gradient with respect to model k's parameters is model k's own gradient, and the recipe's optimiser
  (SGD, Adam, ...: ELEMENTWISE_OPTIMIZERS) acts elementwise on the stacked tensors. Same schedule.
The weights equal the sequential ones up to float rounding (products are summed in another order),
which a long training amplifies as it amplifies any rounding.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import MethodType

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from unlearnbench.data.batches import to_float
from unlearnbench.training.recipe import (
    ELEMENTWISE_OPTIMIZERS,
    build_fast_optimizer,
    label_smoothing,
    scheduler_interval,
)

log = logging.getLogger(__name__)

# Trainer options that act on each model's gradient as a whole; only their neutral values are batched.
_NEUTRAL_TRAINER = {"accumulate_grad_batches": (None, 1), "gradient_clip_val": (None, 0, 0.0)}


def why_not_batched(model: nn.Module, trainer_cfg: dict, device: torch.device, recipe: dict) -> str | None:
    """Why models like `model` cannot be trained as a stacked group under `trainer_cfg`, or None."""
    optimizer = recipe["optimizer"]["_target_"]
    if optimizer not in ELEMENTWISE_OPTIMIZERS:
        return f"recipe.optimizer {optimizer} may couple the stacked models' updates"
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            return f"{type(module).__name__} draws random masks that vmap cannot draw per model as alone"
    for key, neutral in _NEUTRAL_TRAINER.items():
        if trainer_cfg.get(key) not in neutral:
            return f"trainer.{key}={trainer_cfg.get(key)} is not supported by the batched trainer"
    # What `Runtime.autocast` reproduces of Lightning's precision plugins: fp32, and bf16 autocast on a GPU.
    precision = str(trainer_cfg.get("precision") or "32-true")
    if precision not in ("32", "32-true") and (precision != "bf16-mixed" or device.type != "cuda"):
        return f"trainer.precision={precision} on {device.type} is not supported by the batched trainer"
    return None


def num_batches(length: int, limit) -> int:
    """Batches per epoch under Lightning's `limit_train_batches` (an int caps, a float is a fraction)."""
    if limit is None:
        return length
    return min(length, limit) if isinstance(limit, int) else int(length * limit)


def fit_many(
    models: Sequence[nn.Module],
    streams: Sequence,
    recipe: dict,
    trainer_cfg: dict,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 1,
) -> list[dict[str, torch.Tensor]]:
    """Train `models` (one architecture, on the compute device) together, model k on `streams[k]`;
    return their state dicts on the CPU.

    `streams` are `TensorBatches` of equal length. With `checkpoint_dir`, the stacked state (weights,
    optimiser, schedule, batch generators) is saved every `checkpoint_every` epochs and an interrupted
    training resumes from it, as `lightning.fit` does.
    """
    if len({len(s) for s in streams}) != 1:
        raise ValueError("fit_many needs batch streams of equal length (group models by training-set size)")
    if len({s.augment for s in streams}) != 1:
        raise ValueError("fit_many needs batch streams with one augmentation")
    params, buffers = stack_module_state(list(models))
    base = copy.deepcopy(models[0]).to("meta").train()  # the architecture only: weights come from `params`
    for module in base.modules():
        if type(module) is nn.Linear:
            module.forward = MethodType(_linear_weight_first, module)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = MethodType(_batch_norm_in_float32, module)
    epochs = int(recipe["epochs"])
    steps = num_batches(len(streams[0]), trainer_cfg.get("limit_train_batches"))
    opt, sched = build_fast_optimizer(list(params.values()), recipe, epochs * steps)
    per_step = scheduler_interval(recipe) == "step"
    smoothing = label_smoothing(recipe)
    last = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    start = _resume(last, params, buffers, opt, sched, streams)

    def loss(p, b, x, y):
        return F.cross_entropy(functional_call(base, (p, b), (x,)), y, label_smoothing=smoothing)

    step = vmap(loss, randomness="error")  # a random op would draw one mask for all models: refuse it
    for epoch in range(start, epochs):
        for _, (x, y) in zip(range(steps), lockstep(streams)):
            with autocast():
                total = step(params, buffers, x, y).sum()
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if sched is not None and per_step:
                sched.step()
        if sched is not None and not per_step:
            sched.step()
        if last is not None and (epoch + 1) % checkpoint_every == 0:
            _save(last, epoch + 1, params, buffers, opt, sched, streams)
    keys = models[0].state_dict().keys()
    stacked = {**params, **buffers}
    # clone: a view would carry the whole stacked storage into each model's cache entry.
    return [{k: stacked[k][i].detach().cpu().clone() for k in keys} for i in range(len(models))]


def lockstep(streams: Sequence) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One batch of every stream per step, stacked ([K, B, ...] images, [K, B] labels).

    Each stream draws its samples and augmentation parameters from its own generator, exactly as when
    iterated alone; the augmentation (on the uint8 images) and the float conversion then run once for all
    K streams (per-image ops: the same values as K separate calls, for a K-th of the op overhead).
    """
    first = streams[0]
    finished_per_stream = any(s.hook is not None or s.channels_last for s in streams)
    for drawn in zip(*(s.draws() for s in streams)):
        x = torch.stack([d[0] for d in drawn])
        y = torch.stack([d[1] for d in drawn])
        if drawn[0][2] is not None:
            crop_flip = [None if p[0] is None else torch.cat(p) for p in zip(*(d[2] for d in drawn))]
            x = first.augmented(x.flatten(0, 1), crop_flip).unflatten(0, x.shape[:2])
        x = to_float(x)
        if finished_per_stream:  # the hooks draw after the augmentation, each from its stream's generator
            x, y = (torch.stack(t) for t in zip(*(s.finish(*xy) for s, *xy in zip(streams, x, y))))
        yield x, y


def _linear_weight_first(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`nn.Linear.forward` computed as (W x^T)^T: the same products, but under vmap the stacked weight's
    gradient comes out in the weight's own layout (x^T g comes transposed and is copied every step, about
    a fifth of a stacked MLP's step on a CPU). The bias is added by the product itself (addmm) where the
    input is one batch of vectors: one pass less over the output."""
    if x.dim() < 2:
        return F.linear(x, self.weight, self.bias)
    if x.dim() == 2 and self.bias is not None:
        return torch.addmm(self.bias[:, None], self.weight, x.mT).mT
    out = torch.matmul(self.weight, x.mT).mT
    return out if self.bias is None else out + self.bias


def _batch_norm_in_float32(self: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """The BatchNorm's forward on a float32 copy of a bf16 / fp16 input, cast back to the input's dtype.

    Under bf16 autocast a BatchNorm gets bf16 input with float32 statistics. CUDA's kernel takes that mix
    alone, but not under vmap: the backward fails ("Expected running_mean to have type BFloat16 but got
    Float"). The mixed kernel computes in float32 too, so the values are those of the unstacked model.
    """
    forward = type(self).forward
    if x.dtype in (torch.bfloat16, torch.float16):
        return forward(self, x.float()).to(x.dtype)
    return forward(self, x)


def _save(path: Path, epoch: int, params, buffers, opt, sched, streams) -> None:
    from unlearnbench.files import atomic_write_bytes

    state = {
        "epoch": epoch,
        "params": {k: v.detach() for k, v in params.items()},
        "buffers": dict(buffers),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "generators": [s.generator.get_state() for s in streams],
    }
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def _resume(path: Path | None, params, buffers, opt, sched, streams) -> int:
    """Load the last epoch's checkpoint into the stacked state; return the epoch to start from."""
    if path is None or not path.is_file():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a checkpoint cut short by a kill: start over
        log.warning("ignoring unreadable checkpoint %s (%s); training from scratch", path, err)
        path.unlink(missing_ok=True)
        return 0
    with torch.no_grad():
        for stacked, saved in ((params, state["params"]), (buffers, state["buffers"])):
            for k, v in saved.items():
                stacked[k].copy_(v)
    opt.load_state_dict(state["optimizer"])
    if sched is not None:
        sched.load_state_dict(state["scheduler"])
    for s, g in zip(streams, state["generators"], strict=True):
        s.generator.set_state(g)
    log.info("resuming batched training from %s (epoch %s)", path, state["epoch"])
    return int(state["epoch"])
