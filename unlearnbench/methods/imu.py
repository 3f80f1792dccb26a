"""`imu`: Influence-guided Machine Unlearning, retain-data-free (sees only D_f and the model).

Fan, Wu, Zhou, Liang, Harandi, Phung, "IMU: Influence-guided Machine Unlearning", arXiv 2508.01620.

1. Influence of each forget sample on the final linear layer (`model.head`), model in eval mode:
   per-sample CE gradients g_i of the head's weight and bias (closed form for `nn.Linear`, see
   `unlearnbench.methods.lib.influence`), diagonal empirical Fisher F = mean g^2 + damping, mean
   gradient gbar, I_i = -(g_i / F) . gbar.
2. Keep the samples with I_i < 0 (they support fitting the forget set), then the `top_data`
   fraction of those with the largest |I_i|. Weight w_i = sqrt(|I_i|), clipped from above at the
   `weight_clip_quantile` quantile of the kept weights. Selection happens once before the first
   epoch, or before every epoch (`recompute_influence: epoch`).
3. Weighted gradient ascent on the kept samples: per batch
   loss = -(sum_b w_b CE_b) / (sum_b w_b) + alpha_l1 * ||theta_head||_1 (unnormalised sum over the
   head's weight and bias), SGD with momentum and weight decay, `epochs` passes reshuffled each
   epoch. `update_scope: fc` trains only the head; `bn_mode: train` runs the model in train mode as
   the authors do (batch statistics in the loss, BN running statistics move).
   Data is augmented by default (`augment: true`): the influence pass sees one augmented view of
   each sample (seeded), and every training batch a fresh one.

Fast path: with update_scope=fc, bn_mode=eval and augment=false the backbone is a fixed function,
so the penultimate features of D_f are computed once and every later step (influence, each
recomputation, all training batches) runs on the head alone: the whole unlearning stage costs
about one forward pass over D_f. It gives the same result as the full path (`fast_path: false`
forces the full path, for checking).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.checks import check_choice, check_number
from unlearnbench.data.splits import Split
from unlearnbench.errors import UserError
from unlearnbench.methods.base import GrantedSplits, UnlearnContext
from unlearnbench.methods.lib.common import SGDMethod, l1_norm, train_epochs
from unlearnbench.methods.lib.influence import head_influence, penultimate_features


def select_by_influence(
    influence: torch.Tensor, top_data: float, clip_quantile: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """IMU's selection rule: (positions int64 [M], weights float [M]), largest |I| first.

    Keeps samples with I < 0, then the floor(top_data * #negative) of them with the largest |I| (the
    authors' int() rounds down; at least one, where their code would select nothing and not train);
    weights sqrt(|I|), clipped from above at their `clip_quantile` quantile over the kept set
    (linear interpolation, as numpy's default). Empty when no influence is negative (cannot
    happen for a non-zero mean gradient: sum_i I_i = -N gbar^T F^-1 gbar < 0).
    """
    negative = torch.nonzero(influence < 0).flatten()
    if negative.numel() == 0:
        return negative, influence.new_empty(0)
    keep = max(1, math.floor(top_data * negative.numel()))
    magnitude = -influence[negative]
    order = torch.argsort(magnitude, descending=True, stable=True)[:keep]
    positions = negative[order]
    weights = magnitude[order].sqrt()
    cap = torch.quantile(weights, clip_quantile)
    return positions, torch.clamp(weights, max=cap)


def weighted_ascent_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-(sum_b w_b CE_b) / (sum_b w_b): weighted gradient ascent on the batch."""
    ce = F.cross_entropy(logits.float(), labels, reduction="none")
    w = weights.to(ce.dtype)
    return -(w * ce).sum() / w.sum()


def _position_split(x: torch.Tensor) -> Split:
    """A split whose label slot carries each sample's position, so that per-sample labels and
    weights follow their samples through `ctx.batches`' shuffling and augmentation."""
    positions = torch.arange(x.shape[0], device=x.device)
    return Split("imu_selected", x, positions, positions.cpu())


@dataclass(eq=False)
class IMU(SGDMethod):
    needs = frozenset({"forget"})

    alpha_l1: float = 0.2
    damping: float = 0.01
    top_data: float = 0.1
    weight_clip_quantile: float = 0.93
    recompute_influence: str = "once"
    update_scope: str = "fc"
    bn_mode: str = "train"
    fast_path: bool = True

    def __post_init__(self):
        # epochs, batch_size, lr, momentum and weight_decay: checked with every method's (config.check_params)
        check_number("method.alpha_l1", self.alpha_l1, 0)
        check_number("method.damping", self.damping, 0, low_open=True)
        check_number("method.top_data", self.top_data, 0, 1, low_open=True)
        check_number("method.weight_clip_quantile", self.weight_clip_quantile, 0, 1, low_open=True)
        check_choice("method.recompute_influence", self.recompute_influence, ("once", "epoch"))
        check_choice("method.update_scope", self.update_scope, ("fc", "all"))
        check_choice("method.bn_mode", self.bn_mode, ("train", "eval"))
        self.augment, self.fast_path = bool(self.augment), bool(self.fast_path)

    def uses_feature_cache(self) -> bool:
        """True when the backbone is a fixed function during unlearning (see the module docstring)."""
        return self.fast_path and self.update_scope == "fc" and self.bn_mode == "eval" and not self.augment

    def unlearn(self, model: nn.Module, data: GrantedSplits, ctx: UnlearnContext) -> nn.Module:
        if not hasattr(model, "features") or not isinstance(getattr(model, "head", None), nn.Module):
            raise UserError(
                f"method=imu needs a model with `features(x)` and a `head` module; got {type(model).__name__}"
            )
        forget = data.forget
        trainable = list(model.head.parameters()) if self.update_scope == "fc" else list(model.parameters())
        saved_flags = [(p, p.requires_grad) for p in model.parameters()]
        try:
            model.requires_grad_(self.update_scope == "all")
            model.head.requires_grad_(True)
            optimizer = self.sgd(trainable)
            features = None
            if self.uses_feature_cache():
                batches = ctx.batches(forget, ctx.runtime.eval_batch_size, shuffle=False, augment=False)
                features, _ = penultimate_features(
                    model, batches, ctx.runtime.autocast, ctx.runtime.progress, "imu features"
                )
            rounds = self.epochs if self.recompute_influence == "epoch" else 1
            for r in range(rounds):
                positions, weights = self._select(model, forget, features, ctx, r)
                if positions.numel() == 0:
                    ctx.log({"imu/selected": 0})
                    break
                labels = forget.y[positions.to(forget.y.device)].to(ctx.device)
                weights = weights.to(ctx.device)
                ctx.log(
                    {
                        "imu/selected": int(positions.numel()),
                        "imu/round": r,
                        "imu/weight_mean": float(weights.mean()),
                    }
                )
                self._train(
                    model,
                    forget,
                    positions,
                    labels,
                    weights,
                    features,
                    optimizer,
                    ctx,
                    r,
                    self.epochs // rounds,
                )
        finally:
            for p, flag in saved_flags:
                p.requires_grad_(flag)
        return model

    def _select(
        self, model: nn.Module, forget: Split, features: torch.Tensor | None, ctx: UnlearnContext, round_: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Influence of every forget sample under the current model (eval mode), then the selection."""
        if features is not None:
            feats, labels = features, forget.y.to(ctx.device)
        else:
            batches = ctx.batches(
                forget,
                ctx.runtime.eval_batch_size,
                shuffle=False,
                augment=self.augment,
                stream=("influence", round_),
            )
            feats, labels = penultimate_features(
                model, batches, ctx.runtime.autocast, ctx.runtime.progress, "imu influence"
            )
        was_training = model.training
        model.eval()
        try:
            influence = head_influence(model.head, feats, labels, self.damping)
        finally:
            model.train(was_training)
        return select_by_influence(influence, self.top_data, self.weight_clip_quantile)

    def _train(
        self,
        model: nn.Module,
        forget: Split,
        positions: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor,
        features: torch.Tensor | None,
        optimizer: torch.optim.SGD,
        ctx: UnlearnContext,
        round_: int,
        epochs: int,
    ) -> None:
        """`epochs` passes of weighted gradient ascent over the selected samples."""
        if features is not None:
            feats = features[positions.to(features.device)]
            # The batches only carry positions; a 1-byte stand-in image keeps ctx.batches' seeded order.
            stand_in = torch.zeros(len(positions), 1, 1, 1, dtype=torch.uint8, device=forget.x.device)
            batches = ctx.batches(
                _position_split(stand_in), self.batch_size, shuffle=True, stream=("train", round_)
            )

            def logits_of(m: nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
                return m.head(feats[pos])
        else:
            images = forget.x[positions.to(forget.x.device)]
            batches = ctx.batches(
                _position_split(images),
                self.batch_size,
                shuffle=True,
                augment=self.augment,
                stream=("train", round_),
            )

            def logits_of(m: nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
                return m(x)

        step_loss = self._step_loss(logits_of, labels, weights)
        model.train(self.bn_mode == "train")
        try:
            train_epochs(model, epochs, batches, step_loss, optimizer, ctx, f"imu round {round_}")
        finally:
            model.eval()

    def _step_loss(
        self, logits_of: Callable, labels: torch.Tensor, weights: torch.Tensor
    ) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
        alpha = self.alpha_l1

        def step_loss(m: nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
            pos = pos.to(labels.device)
            loss = weighted_ascent_loss(logits_of(m, x, pos), labels[pos], weights[pos])
            return loss + alpha * l1_norm(m.head) if alpha > 0 else loss

        return step_loss
