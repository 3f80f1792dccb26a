"""`gradtau`: ∇τ, gradient-based and task-agnostic machine unlearning.

Trippa, Campagnano, Persia, Bartoli, Cinque, "∇τ: Gradient-based and Task-Agnostic machine
Unlearning", arXiv 2403.14339.

Each step pairs one forget batch with one retain batch and descends

    L = alpha * relu(tau - CE_mean(forget batch))^2 + (1 - alpha) * CE_mean(retain batch)

where tau is the mean per-sample CE of the model on unseen data (here D_val, model in eval mode),
recomputed every `tau_refresh_every` forget-epochs (0, 5, 10, ...). The ascent on D_f is adaptive:
its push grows with how far the forget loss sits below the loss of unseen data, and the relu stops
it once the forget loss reaches tau, so the forget samples end up looking "unseen" rather than
being driven to an arbitrarily high loss.

Schedule ("no tuning" defaults of the paper):
- alpha0 = (5/3) * forget_ratio (0.05 / 0.25 / 0.5 at 3 / 15 / 30% forgetting), decayed linearly:
  epoch i of E uses alpha0 * (1 - i / E), the last epoch alpha0 / E.
- One forget-epoch = one pass over D_f; E = int(n_r_batches / (2 * n_f_batches) * 6) with
  n_batches = ceil(n / batch_size), i.e. about three passes over D_r in total. The retain batches
  come from one stream that carries over between forget-epochs and restarts (reshuffled) when
  exhausted.
- AdamW (lr 1e-3, weight decay 0.01), LinearLR factor 1.0 -> 0.1 over E epochs, stepped per epoch.
- Model in eval mode throughout in the authors' main runs (`bn_mode: eval`), un-augmented data.
In the authors' code D_val is half of the official test set; here it is the validation split.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from unlearnbench.config.checks import check_choice, check_int, check_number
from unlearnbench.errors import UserError
from unlearnbench.methods.base import GrantedSplits, Method, UnlearnContext
from unlearnbench.methods.lib.common import EpochLoss, check_weights_finite, descend, endless

BN_MODES = ("eval", "train")


def default_alpha0(forget_ratio: float) -> float:
    """The paper's "no tuning" rule: alpha0 = (5/3) * |D_f| / |D_train|."""
    return 5.0 / 3.0 * forget_ratio


def alpha_schedule(alpha0: float, epochs: int) -> list[float]:
    """alpha for epochs 0..E-1: linear decay alpha0 * (1 - i/E), ending at alpha0 / E."""
    return [alpha0 * (1.0 - i / epochs) for i in range(epochs)]


def num_batches(n: int, batch_size: int) -> int:
    """ceil(n / batch_size): batches in one pass, the last one possibly partial."""
    return -(-n // batch_size)


def num_epochs(n_forget: int, n_retain: int, batch_size: int, cap: int | None = None) -> int:
    """E = int(n_r_batches / (2 * n_f_batches) * 6), at most `cap` (None: no cap), at least 1.

    Computed in integers (floor of 6 n_r / (2 n_f)), which equals the float formula but cannot
    land just below an integer by rounding.
    """
    f_batches, r_batches = num_batches(n_forget, batch_size), num_batches(n_retain, batch_size)
    epochs = (6 * r_batches) // (2 * f_batches)
    if cap is not None:
        epochs = min(epochs, cap)
    return max(1, epochs)


def tau_refresh_epochs(epochs: int, every: int) -> list[int]:
    """Forget-epochs at whose start tau is recomputed: 0, every, 2 * every, ... below `epochs`."""
    return list(range(0, epochs, every))


@torch.no_grad()
def mean_ce(model: nn.Module, batches: Iterable, ctx: UnlearnContext) -> float:
    """Mean per-sample cross-entropy of `model` over `batches`, in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        with ctx.runtime.autocast():
            logits = model(x)
        # Summed on the device in float64 (read once below: no wait for the GPU per batch).
        total = total + F.cross_entropy(logits.float(), y, reduction="sum").double()
        count += int(y.numel())
    model.train(was_training)
    total = float(total)
    if count == 0:
        raise UserError(
            "gradtau: the validation split is empty; ∇τ needs D_val to set tau (set dataset.val_fraction > 0)"
        )
    return total / count


def gradtau_loss(
    model: nn.Module,
    x_forget: torch.Tensor,
    y_forget: torch.Tensor,
    x_retain: torch.Tensor,
    y_retain: torch.Tensor,
    tau: float,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, forget CE) for one paired step: alpha * relu(tau - CE_f)^2 + (1 - alpha) * CE_r.

    The relu makes the forget term, and its gradient, exactly zero once CE_f >= tau.
    """
    forget_ce = F.cross_entropy(model(x_forget).float(), y_forget)
    retain_ce = F.cross_entropy(model(x_retain).float(), y_retain)
    ascent = torch.relu(tau - forget_ce) ** 2
    return alpha * ascent + (1.0 - alpha) * retain_ce, forget_ce


class GradTau(Method):
    """∇τ (Trippa et al., arXiv 2403.14339): adaptive gradient ascent on D_f up to the D_val loss."""

    needs = frozenset({"forget", "retain", "val"})

    def __init__(
        self,
        alpha0: float | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        batch_size: int = 256,
        tau_refresh_every: int = 5,
        max_epochs: int | None = None,
        lr_end_factor: float = 0.1,
        bn_mode: str = "eval",
        augment: bool = False,
    ):
        check_number("method.alpha0", alpha0, 0, 1, allow_none=True, hint="null: (5/3) * forget_ratio")
        check_int("method.tau_refresh_every", tau_refresh_every, 1)
        check_int("method.max_epochs", max_epochs, 1, allow_none=True, hint="null: no cap")
        check_number("method.lr_end_factor", lr_end_factor, 0, 1, low_open=True)
        check_choice("method.bn_mode", bn_mode, BN_MODES)
        self.alpha0 = None if alpha0 is None else float(alpha0)
        self.lr, self.weight_decay, self.lr_end_factor = lr, weight_decay, float(lr_end_factor)
        self.batch_size, self.tau_refresh_every, self.max_epochs = batch_size, tau_refresh_every, max_epochs
        self.bn_mode, self.augment = bn_mode, augment

    def resolve_alpha0(self, forget_ratio: float) -> float:
        """The configured alpha0, or the paper's rule; the rule exceeds 1 above 60% forgetting."""
        if self.alpha0 is not None:
            return self.alpha0
        alpha0 = default_alpha0(forget_ratio)
        if alpha0 > 1.0:
            raise UserError(
                f"gradtau: the default alpha0 = (5/3) * forget_ratio = {alpha0:.3f} exceeds 1 "
                f"(forget_ratio {forget_ratio:.3f}); set method.alpha0 to a number in [0, 1]"
            )
        return alpha0

    def unlearn(self, model: nn.Module, data: GrantedSplits, ctx: UnlearnContext) -> nn.Module:
        epochs = num_epochs(len(data.forget), len(data.retain), self.batch_size, self.max_epochs)
        alphas = alpha_schedule(self.resolve_alpha0(ctx.forget_ratio), epochs)
        refresh = set(tau_refresh_epochs(epochs, self.tau_refresh_every))

        batches = partial(ctx.batches, batch_size=self.batch_size, shuffle=True, augment=self.augment)
        forget = batches(data.forget, stream="forget")
        retain = endless(batches(data.retain, stream="retain"), "gradtau: the retain set")
        val = ctx.batches(data.val, ctx.runtime.eval_batch_size, shuffle=False)

        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=1.0, end_factor=self.lr_end_factor, total_iters=epochs
        )
        model.train(self.bn_mode == "train")
        tau = float("nan")
        with tqdm(range(epochs), desc="gradtau", disable=not ctx.runtime.progress, leave=False) as bar:
            for epoch in bar:
                if epoch in refresh:
                    tau = mean_ce(model, val, ctx)
                alpha = alphas[epoch]
                epoch_loss, epoch_forget_ce = EpochLoss(), EpochLoss()
                for x_f, y_f in forget:
                    x_r, y_r = next(retain)
                    with ctx.runtime.autocast():
                        loss, forget_ce = gradtau_loss(model, x_f, y_f, x_r, y_r, tau, alpha)
                    epoch_loss.add(loss)
                    epoch_forget_ce.add(forget_ce)
                    descend(opt, loss)
                sched.step()
                stats = {
                    "loss": epoch_loss.mean(f"gradtau epoch {epoch}"),
                    "forget_ce": epoch_forget_ce.mean(f"gradtau epoch {epoch}"),
                    "tau": tau,
                    "alpha": alpha,
                }
                bar.set_postfix({k: f"{v:.4f}" for k, v in stats.items()})
                ctx.log({f"gradtau/{k}": v for k, v in stats.items()} | {"gradtau/epoch": epoch})
        check_weights_finite(model, "gradtau")
        return model
