"""Building blocks shared by importance- and distillation-based baselines.

- `mean_squared_gradients`: per-parameter mean of squared CE gradients, either over mini-batches
  (SSD's importances; Foster et al., AAAI 2024) or over single samples (the diagonal empirical
  Fisher of Fisher forgetting; Golatkar et al., CVPR 2020), the latter vectorised with `torch.func`
  instead of a batch-size-1 loop.
- `distill_kl`: the temperature-scaled distillation KL of Hinton et al. (2015), as used by SCRUB
  (Kurmanji et al., NeurIPS 2023) and Bad Teacher (Chundawat et al., AAAI 2023).
- `frozen_copy` / `reinitialised_copy`: frozen teachers (the original model, or a seeded random
  initialisation of the same architecture).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

Importances = dict[str, torch.Tensor]


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _batch_squared_grads(
    model: nn.Module, params: dict[str, nn.Parameter], x, y, autocast
) -> list[torch.Tensor]:
    """Squared gradients of the batch-mean CE (one backward pass)."""
    with autocast():
        loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g.float().square() for g, p in zip(grads, params.values())]


def _per_sample_grad_fn(model: nn.Module) -> Callable:
    """`f(params, x, y)` -> per-sample CE gradients, batched over x and y with `vmap`.

    In float32 even under a bf16 run: squared per-sample gradients are small and bf16 would round many to
    zero (and CPU batch norm under vmap does not take bf16 inputs with float32 statistics).
    """
    buffers = dict(model.named_buffers())

    def sample_loss(params, x, y):
        logits = functional_call(model, (params, buffers), (x.unsqueeze(0).float(),))
        return F.cross_entropy(logits.float(), y.unsqueeze(0))

    return vmap(grad(sample_loss), in_dims=(None, 0, 0))


def mean_squared_gradients(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    per_sample: bool = False,
    chunk_size: int = 64,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress: bool = False,
    desc: str = "importance",
) -> Importances:
    """Per-parameter mean of squared CE gradients, keyed by parameter name (trainable ones only).

    `per_sample=False`: mean over batches of (grad of the batch-mean CE)^2, as SSD computes its
    importances; the value depends on the batch size. `per_sample=True`: mean over samples of
    (grad of that sample's CE)^2, the diagonal empirical Fisher; samples are processed `chunk_size`
    at a time with `torch.func.vmap` (needs eval mode: one sample's batch statistics are meaningless).
    The model's train/eval mode is the caller's choice and is left as it is.
    """
    if per_sample and model.training:
        raise ValueError("per-sample gradients need the model in eval mode (call model.eval() first)")
    params = _trainable(model)
    total = [torch.zeros_like(p, dtype=torch.float32) for p in params.values()]
    count = 0
    per_sample_grads = _per_sample_grad_fn(model) if per_sample else None
    detached = {name: p.detach() for name, p in params.items()}
    for x, y in tqdm(batches, desc=desc, disable=not progress, leave=False):
        if per_sample_grads is None:
            for acc, sq in zip(total, _batch_squared_grads(model, params, x, y, autocast)):
                acc.add_(sq)
            count += 1
            continue
        for xc, yc in zip(x.split(chunk_size), y.split(chunk_size)):
            grads = per_sample_grads(detached, xc, yc)
            for acc, name in zip(total, params):
                acc.add_(grads[name].float().square().sum(0))
        count += len(y)
    if count == 0:
        raise ValueError(f"{desc}: no batches to compute importances on")
    return {name: acc / count for name, acc in zip(params, total)}


def distill_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)): the distillation loss.

    This is the direction Hinton-style distillation (and SCRUB's code) uses, F.kl_div(log p_s, p_t):
    the teacher's distribution is the reference. The T^2 factor keeps gradient sizes comparable
    across temperatures. `reduction`: "batchmean" (a scalar) or "none" (one value per sample).
    """
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    per_sample = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(1) * temperature**2
    if reduction == "none":
        return per_sample
    if reduction == "batchmean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'batchmean' or 'none', got {reduction!r}")


def _freeze(model: nn.Module) -> nn.Module:
    model.eval().requires_grad_(False)
    return model


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off: a teacher that cannot move."""
    return _freeze(copy.deepcopy(model))


def reinitialised_copy(model: nn.Module, seed: int) -> nn.Module:
    """A frozen copy of `model` whose layers are re-initialised (`reset_parameters`) from `seed`.

    The re-initialisation runs on the CPU under a forked RNG, so the result is the same on any
    device and the global random state is untouched.
    """
    device = next(model.parameters()).device
    teacher = copy.deepcopy(model).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in teacher.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return _freeze(teacher.to(device))
