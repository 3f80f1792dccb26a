"""Per-sample gradients and influence scores of a classifier's final layer (`model.head`).

Building blocks of IMU (Fan et al., "IMU: Influence-guided Machine Unlearning", arXiv 2508.01620),
reusable by any method that needs last-layer per-sample gradients or a diagonal-Fisher influence:

- `penultimate_features`: one batched eval-mode pass giving h_i = model.features(x_i).
- `linear_head_influence`: closed form for a plain `nn.Linear` head. With a_i = softmax(z_i) -
  onehot(y_i), the CE gradient of sample i is g_i = [a_i h_i^T, a_i] (weight, bias). Every quantity
  the influence needs factorises over (a, h), so no [N, K*D] tensor is ever built:
      mean gradient        gbar_W = A^T H / N,            gbar_b = mean_i a_i
      diagonal Fisher      F_W = (A*A)^T (H*H) / N + λ,   F_b = mean_i a_i^2 + λ
      influence            I_i = -(g_i / F) . gbar = -sum_k a_ik (h_i . Q_k) - a_i . q_b,
                           with Q = gbar_W / F_W and q_b = gbar_b / F_b.
  Memory O(N (K + D) + K D), time one pass over the features plus three small matmuls.
- `head_grads_vmap` / `vmap_head_influence`: the same for any other head module, with
  `torch.func.functional_call` + `vmap(grad(...))` in chunks (never a per-sample Python loop).
- `head_influence`: picks the closed form for a plain `nn.Linear`, else the vmap route.
- `fisher_influence`: the formula on materialised per-sample gradients [N, P] (reference / small N).

All influence arithmetic runs in float64: it is a handful of small matmuls, and it keeps the
scores exact enough to rank samples whose influences differ in the sixth digit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import ContextManager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm


def penultimate_features(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    autocast: Callable[[], ContextManager] = contextlib.nullcontext,
    progress: bool = False,
    desc: str = "features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, D], labels [N]) of every batch, concatenated in order.

    Features keep the model's dtype, except that half-precision outputs (autocast) become float32.

    The model runs in eval mode (batch statistics of a forget batch would make a sample's gradient
    depend on its batch-mates); its previous mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        with torch.no_grad():
            for x, y in tqdm(batches, desc=desc, disable=not progress, leave=False):
                with autocast():
                    h = model.features(x)
                feats.append(h.float() if h.dtype in (torch.float16, torch.bfloat16) else h)
                labels.append(y)
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError(f"{desc}: no batches to compute features on")
    return torch.cat(feats), torch.cat(labels)


def softmax_residual(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d CE / d logits for each sample: softmax(z_i) - onehot(y_i), shape [N, K]."""
    probs = torch.softmax(logits, dim=1)
    return probs - F.one_hot(labels, probs.shape[1]).to(probs.dtype)


def linear_head_influence(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    damping: float,
) -> torch.Tensor:
    """Closed-form I_i = -(g_i / F) . gbar over the head's weight (and bias), float64 [N].

    `features` [N, D] are the head's inputs, `weight` [K, D] and `bias` [K] (or None) its
    parameters. F is the diagonal empirical Fisher mean_i g_i^2 + `damping`, gbar the mean
    gradient, both over these N samples. See the module docstring for the factorisation.
    """
    h = features.detach().to(torch.float64)
    w = weight.detach().to(torch.float64)
    logits = h @ w.T
    if bias is not None:
        logits = logits + bias.detach().to(torch.float64)
    a = softmax_residual(logits, labels)  # [N, K]
    n = h.shape[0]
    mean_grad_w = a.T @ h / n  # [K, D]
    fisher_w = (a * a).T @ (h * h) / n + damping
    score = ((h @ (mean_grad_w / fisher_w).T) * a).sum(dim=1)  # sum_{k,d} a_ik h_id Q_kd
    if bias is not None:
        mean_grad_b = a.mean(dim=0)
        fisher_b = (a * a).mean(dim=0) + damping
        score = score + a @ (mean_grad_b / fisher_b)
    return -score


def fisher_influence(grads: torch.Tensor, damping: float) -> torch.Tensor:
    """I_i = -(g_i / F) . gbar from materialised per-sample gradients `grads` [N, P], float64 [N]."""
    g = grads.detach().to(torch.float64)
    fisher = (g * g).mean(dim=0) + damping
    return -(g / fisher) @ g.mean(dim=0)


def head_grads_vmap(head: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample CE gradients w.r.t. all of `head`'s parameters, flattened: float64 [N, P].

    One `vmap(grad(...))` call (no Python loop over samples). Parameters are concatenated in
    `named_parameters()` order. The head must hold no batch-dependent state (eval mode).
    """
    params = {name: p.detach().to(torch.float64) for name, p in head.named_parameters()}
    buffers = {name: b.to(torch.float64) if b.is_floating_point() else b for name, b in head.named_buffers()}

    def sample_loss(p, h, y):
        logits = functional_call(head, (p, buffers), (h.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(
        params, features.detach().to(torch.float64), labels
    )
    return torch.cat([g.reshape(g.shape[0], -1) for g in per_sample.values()], dim=1)


def vmap_head_influence(
    head: nn.Module, features: torch.Tensor, labels: torch.Tensor, damping: float, chunk_size: int = 1024
) -> torch.Tensor:
    """I_i = -(g_i / F) . gbar for any head module, per-sample gradients by `head_grads_vmap`.

    Two passes over `chunk_size` samples at a time (Fisher and mean gradient first, then the
    scores), so memory is O(chunk_size * P) rather than O(N * P).
    """
    was_training = head.training
    head.eval()
    try:
        chunks = list(zip(features.split(chunk_size), labels.split(chunk_size)))
        total = sq_total = None
        for h, y in chunks:
            g = head_grads_vmap(head, h, y)
            total = g.sum(0) if total is None else total + g.sum(0)
            sq_total = (g * g).sum(0) if sq_total is None else sq_total + (g * g).sum(0)
        n = features.shape[0]
        direction = (total / n) / (sq_total / n + damping)  # gbar / F
        return -torch.cat([head_grads_vmap(head, h, y) @ direction for h, y in chunks])
    finally:
        head.train(was_training)


def is_plain_linear(module: nn.Module) -> bool:
    """True for an `nn.Linear` itself (a subclass may override `forward`, so it does not count)."""
    return type(module) is nn.Linear


def head_influence(
    head: nn.Module, features: torch.Tensor, labels: torch.Tensor, damping: float
) -> torch.Tensor:
    """Influence of each sample on the head: closed form for a plain `nn.Linear`, else vmap."""
    if is_plain_linear(head):
        return linear_head_influence(features, labels, head.weight, head.bias, damping)
    return vmap_head_influence(head, features, labels, damping)
