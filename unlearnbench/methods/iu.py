"""`iu`: influence unlearning, one Newton-like step with a WoodFisher inverse-Hessian estimate.

Koh & Liang, "Understanding Black-box Predictions via Influence Functions", ICML 2017; Izzo et al.,
"Approximate Data Deletion from Machine Learning Models", AISTATS 2021; in the form the SalUn benchmark runs
(Fan et al., ICLR 2024, Table 1 row IU; Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS
2023), whose code is OPTML-Group/Unlearn-Saliency, Classification/unlearn/Wfisher.py. With n_f forget and n_r
retain samples, n = n_f + n_r, and all gradients of the CE loss at the original weights, model in eval mode:

    v = (sum_{i in D_f} g_i) / n  -  (n_f / (n n_r)) sum_{j in D_r} g_j
    theta <- theta + alpha * H^-1 v

H^-1 v by the authors' WoodFisher recursion (Singh & Alistarh, NeurIPS 2020) over single retain samples in
dataset order: k = v, o = g_1; for each later sample g, with t = o.g:
    k <- k - (k.g / (N + t)) o,   o <- o - (t / (N + t)) o
The recursion stops once the sample index exceeds N (N = `fisher_n`, 1000 in the authors' code), so it sees the
first N + 2 retain samples. Per-sample gradients are computed `chunk_size` at a time with `torch.func.vmap`
(float32), not one backward pass per sample; the gradient sums use batches. Authors' defaults: alpha 0.2 (their
arg_parser's --alpha; the paper tunes it per setting), batches of 256, every trainable parameter, the training
transform on the forget and retain images (their loaders carry it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.checks import check_int, check_number
from unlearnbench.errors import UserError
from unlearnbench.methods.base import Method
from unlearnbench.methods.lib.common import check_weights_finite
from unlearnbench.methods.lib.importance import _per_sample_grad_fn


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def gradient_sum(model: nn.Module, batches, autocast) -> tuple[torch.Tensor, int]:
    """(sum over the samples of their CE gradient, flattened over the trainable parameters; the sample count)."""
    params = list(_trainable(model).values())
    total = torch.zeros(sum(p.numel() for p in params), device=params[0].device)
    count = 0
    for x, y in batches:
        with autocast():
            loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
        total += torch.cat([g.float().flatten() for g in flat])
        count += len(y)
    return total, count


def per_sample_gradients(model: nn.Module, batches, limit: int, chunk_size: int):
    """Flattened float32 CE gradients of the first `limit` samples of `batches`, one at a time, in order."""
    params = {name: p.detach() for name, p in _trainable(model).items()}
    grad_fn, seen = _per_sample_grad_fn(model), 0
    for x, y in batches:
        for xc, yc in zip(x.split(chunk_size), y.split(chunk_size)):
            grads = grad_fn(params, xc, yc)
            flat = torch.cat([grads[name].float().flatten(1) for name in params], dim=1)
            for g in flat:
                if seen == limit:
                    return
                seen += 1
                yield g


def woodfisher_inverse_product(v: torch.Tensor, sample_grads, n: int) -> torch.Tensor:
    """The authors' WoodFisher recursion applied to `v` (see the module docstring)."""
    k, o = v.clone(), None
    for g in sample_grads:
        if o is None:
            o = g.clone()
            continue
        t = torch.dot(o, g)
        k -= (torch.dot(k, g) / (n + t)) * o
        o -= (t / (n + t)) * o
    return k


@torch.no_grad()
def add_flat_(model: nn.Module, delta: torch.Tensor) -> None:
    """theta += delta, `delta` flattened over the trainable parameters in their order."""
    offset = 0
    for p in _trainable(model).values():
        p.add_(delta[offset : offset + p.numel()].view_as(p).to(p.dtype))
        offset += p.numel()


class InfluenceUnlearning(Method):
    needs = frozenset({"forget", "retain"})

    def __init__(
        self,
        alpha: float = 0.2,
        fisher_n: int = 1000,
        batch_size: int = 256,
        chunk_size: int = 32,
        augment: bool = True,
    ):
        check_number("method.alpha", alpha, 0, low_open=True, hint="the step size of the influence update")
        check_int("method.fisher_n", fisher_n, minimum=1)
        check_int("method.chunk_size", chunk_size, minimum=1)
        self.alpha, self.fisher_n, self.batch_size = alpha, fisher_n, batch_size
        self.chunk_size, self.augment = chunk_size, augment

    def unlearn(self, model, data, ctx):
        model.eval()
        autocast = ctx.runtime.autocast
        batches = {
            name: ctx.batches(getattr(data, name), self.batch_size, shuffle=False, augment=self.augment)
            for name in ("forget", "retain")
        }
        forget_sum, n_f = gradient_sum(model, batches["forget"], autocast)
        retain_sum, n_r = gradient_sum(model, batches["retain"], autocast)
        if n_f == 0 or n_r == 0:
            raise UserError("iu: the forget and retain sets must both hold samples")
        v = forget_sum / (n_f + n_r) - retain_sum * (n_f / ((n_f + n_r) * n_r))
        samples = per_sample_gradients(model, batches["retain"], self.fisher_n + 2, self.chunk_size)
        step = woodfisher_inverse_product(v, samples, self.fisher_n)
        ctx.log({"iu/step_norm": float(self.alpha * step.norm())})
        add_flat_(model, self.alpha * step)
        check_weights_finite(model, "iu update")
        return model
