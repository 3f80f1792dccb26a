"""Relearning attack: fine-tune a copy of each model briefly on a few labelled forget samples plus retain data,
and measure how much of the rest of the forget set comes back.

"Relearn time" is from Golatkar, Achille & Soatto, "Eternal Sunshine of the Spotless Net: Selective
Forgetting in Deep Networks" (CVPR 2020): a model that only hides the forgotten data relearns it in far fewer
steps than one that never saw it. The recipe here is fixed and the same for every model: a seeded
`forget_fraction` of D_f is given to the attacker with its labels; each of `steps` SGD steps (lr, momentum,
no weight decay, train mode, no augmentation) takes `forget_batch` of those samples and `retain_batch` retain
samples, drawn with the same seeded generator for every model. The value is the accuracy, after the steps,
on the part of D_f the attacker never saw (`relearn_forget_acc`); the ideal is Retrain's value.

In a class-wise scenario this is the recall of the forgotten classes, which a head merely tilted towards them
also raises: over the first steps (momentum building up on a class that was never predicted) even Retrain
swings to most of D_f, so the recipe takes enough steps for that to settle (on memorise_cifar10, class 0,
Retrain: 69 % after 10 steps, 32 % after 30, 35 % after 50) and a forget share per batch near a class's share
of the training set (8 of 64).

The fine-tuning works on a deep copy: the evaluated models are never changed (tested).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from unlearnbench.config.checks import check_int, check_number
from unlearnbench.data.splits import Split
from unlearnbench.errors import UserError
from unlearnbench.evaluation import predict
from unlearnbench.methods.lib.common import check_weights_finite, descend
from unlearnbench.metrics.accuracy import accuracy
from unlearnbench.metrics.base import Column, Metric


def attacker_split(forget: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(the attacker's labelled part of D_f, the held-out rest): a seeded draw of ceil(fraction x |D_f|)."""
    n = len(forget)
    if n < 2:
        raise UserError(
            f"the relearning attack needs at least 2 forget samples (has {n}); drop it from eval.metrics"
        )
    given = min(n - 1, max(1, math.ceil(fraction * n)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = []
    for name, idx in (
        ("relearn_given", order[:given].sort().values),
        ("relearn_held_out", order[given:].sort().values),
    ):
        dev = idx.to(forget.x.device)
        parts.append(Split(name, forget.x[dev], forget.y[dev], forget.indices[idx]))
    return parts[0], parts[1]


class RelearnAttack(Metric):
    """`relearn_forget_acc`: held-out forget accuracy after `steps` fine-tuning steps (module docstring)."""

    needs_models = True

    def __init__(
        self,
        steps: int = 30,
        lr: float = 0.01,
        momentum: float = 0.9,
        forget_fraction: float = 0.1,
        forget_batch: int = 8,
        retain_batch: int = 56,
        seed: int = 0,
    ):
        key = "eval.metrics.relearn"
        self.steps = check_int(f"{key}.steps", steps, 0)
        self.lr, self.momentum = float(lr), float(momentum)  # checked with every lr (config.check_params)
        self.forget_fraction = float(
            check_number(f"{key}.forget_fraction", forget_fraction, 0.0, 1.0, low_open=True, high_open=True)
        )
        self.forget_batch = check_int(f"{key}.forget_batch", forget_batch, 1)
        self.retain_batch = check_int(f"{key}.retain_batch", retain_batch, 0)
        self.seed = check_int(f"{key}.seed", seed, 0)

    def with_models(self, ctx) -> dict[str, dict[str, float]]:
        given, held_out = attacker_split(ctx.splits.forget, self.forget_fraction, self.seed)
        out = {}
        for who, model in ctx.models.items():
            if model is not None:
                relearned = self.relearn(model, given, ctx.splits.retain, ctx.runtime)
                scored = predict(relearned, held_out, ctx.runtime)
                out[who] = {"relearn_forget_acc": float(accuracy(scored.logits, scored.labels))}
        return out

    def relearn(self, model: nn.Module, given: Split, retain: Split, runtime) -> nn.Module:
        """A fine-tuned deep copy of `model`; `model` itself is left as it is."""
        attacker = copy.deepcopy(model).train()
        params = list(attacker.parameters())
        for p in params:
            p.requires_grad_(True)  # a method may have frozen some; the attacker tunes them all
        optimizer = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        draws = torch.Generator().manual_seed(self.seed)  # the same batches for every model
        for _ in range(self.steps):
            x, y = self.batch(given, retain, draws, runtime)
            with runtime.autocast():
                loss = nn.functional.cross_entropy(attacker(x), y)
            descend(optimizer, loss)
        check_weights_finite(attacker, "the relearning attack")
        return attacker.eval()

    def batch(self, given: Split, retain: Split, draws: torch.Generator, runtime):
        """One training batch on the device: forget_batch attacker samples and retain_batch retain samples."""
        pick_f = torch.randint(len(given), (self.forget_batch,), generator=draws)
        picks = [(given, pick_f)]
        if self.retain_batch and len(retain):
            picks.append((retain, torch.randint(len(retain), (self.retain_batch,), generator=draws)))
        x = torch.cat([s.x[i.to(s.x.device)].to(runtime.device) for s, i in picks])
        y = torch.cat([s.y[i.to(s.y.device)].to(runtime.device) for s, i in picks])
        return runtime.model_input(x), y

    def columns(self) -> list[Column]:
        return [
            Column(
                "relearn_forget_acc",
                order=160,
                label="relearn",
                extra={
                    "definition": f"accuracy on the held-out {1 - self.forget_fraction:.0%} of D_f after {self.steps} "
                    f"SGD steps (lr {self.lr}, momentum {self.momentum}) on a copy of the model, each step "
                    f"{self.forget_batch} of the other {self.forget_fraction:.0%} of D_f (labelled) + "
                    f"{self.retain_batch} retain samples; the same draws for every model",
                    "paper": "relearn time: Golatkar et al., Eternal Sunshine of the Spotless Net (CVPR 2020)",
                },
            )
        ]
