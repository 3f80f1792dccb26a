"""`mnemonic`: one-shot class unlearning with mnemonic codes.

Yamashita, Yamada, Shibata, "One-Shot Machine Unlearning with Mnemonic Code", ACML 2024
(arXiv 2306.05670).

The method changes the ORIGINAL training (through a `TrainingHook`) and then forgets without
touching any data:

- Codes: one fixed random image per class, uniform in [0, 1) with the input's shape, drawn from a
  CPU generator seeded from the run's seed (`code_seed`). They are saved with the original model's
  checkpoint and come back as `ctx.hook_state["codes"]`.
- Training: after augmentation, each sample of a training batch is replaced, with probability
  `t_mix`, by the code of its class (codes are not augmented); the coin comes from the batches'
  seeded generator, so it is reproducible and re-flipped every epoch. The hook's spec enters the
  original model's cache key, so a code-trained original never collides with a plain one.
- Forgetting (one shot, no optimisation, no D_f / D_r access): in eval mode, the squared CE gradient
  of each class's code (a batch of one) per parameter; F_f = (1e-16 + sum over forgotten classes of
  g^2) / their count, F_r the same over the other classes; l = log F_f - log F_r per entry, NaN -> 0,
  +-inf -> the tensor's largest finite l; r = exp(l); per tensor delta = min(lambda1, lambda2 /
  max r) * r. Every trainable parameter (BN affine and the head included, BN running statistics
  untouched) moves to theta + delta or theta - delta, whichever scores higher on the codes alone by
  (1 - forget-code accuracy) + remaining-code accuracy (a tie goes to minus, as in the authors' code).

Defaults: CIFAR-10 / ResNet-18 t_mix 0.3, lambda1 1e-5, lambda2 1e4; MNIST / MLP 784-1000(sigmoid)-10
t_mix 0.1, lambda1 1e-3, lambda2 10. One difference from the authors' pipeline: their CIFAR codes are
uniform in the already-normalised tensor space, ours in the [0, 1) image space our models normalise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from unlearnbench.config.checks import check_number
from unlearnbench.data.scenarios import CLASSWISE
from unlearnbench.errors import ConfigError, UserError
from unlearnbench.methods.base import Method, TrainingHook, derive_seed
from unlearnbench.methods.lib.common import check_weights_finite
from unlearnbench.methods.lib.importance import Importances
from unlearnbench.metrics.accuracy import correct

FISHER_FLOOR = 1e-16  # the accumulators' starting value (authors' code): keeps log F finite


def code_seed(seed: int) -> int:
    """The codes' seed: the run's random stream "mnemonic_codes" (the hook gets the seed, not a context)."""
    return derive_seed(seed, "mnemonic_codes")


def make_codes(num_classes: int, shape: Sequence[int], seed: int) -> torch.Tensor:
    """One uniform [0, 1) image per class, float32 [num_classes, *shape], drawn on the CPU from `seed`."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.rand((num_classes, *shape), generator=gen, dtype=torch.float32)


def mix_codes(
    x: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, t_mix: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each sample of the batch by its class's code with probability `t_mix` (labels unchanged).

    The coins come from `generator` (the batches' own, on their device), so the same seed gives the same
    replacements.
    """
    coin = torch.rand(len(y), generator=generator, device=generator.device) < t_mix
    coin = coin.to(x.device)[:, None, None, None]
    return torch.where(coin, codes.to(device=x.device, dtype=x.dtype)[y], x), y


def code_fisher(
    model: nn.Module,
    codes: torch.Tensor,
    classes: Sequence[int],
    progress: bool = False,
    desc: str = "mnemonic fisher",
) -> Importances:
    """(1e-16 + sum over `classes` of g_c^2) / len(classes), g_c the CE gradient of code c (batch of one).

    Keyed by trainable parameter name. Runs in float32 without autocast: the ratio F_f / F_r of
    values near the 1e-16 floor would not survive half precision. The caller sets eval mode.
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    total = {name: torch.full_like(p, FISHER_FLOOR, dtype=torch.float32) for name, p in params.items()}
    for c in tqdm(list(classes), desc=desc, disable=not progress, leave=False):
        logits = model(codes[c : c + 1])
        loss = F.cross_entropy(logits.float(), torch.tensor([int(c)], device=logits.device))
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for name, g in zip(params, grads):
            if g is not None:
                total[name].add_(g.float().square())
    return {name: acc / len(classes) for name, acc in total.items()}


def log_ratio(fisher_forget: torch.Tensor, fisher_remain: torch.Tensor) -> torch.Tensor:
    """l = log F_f - log F_r (float64), NaN -> 0, +-inf -> the tensor's largest finite l (0 if none)."""
    l = fisher_forget.double().log() - fisher_remain.double().log()
    l = torch.where(torch.isnan(l), torch.zeros_like(l), l)
    finite = torch.isfinite(l)
    top = l[finite].max() if bool(finite.any()) else l.new_zeros(())
    return torch.where(finite, l, top)


def perturbation(
    fisher_forget: torch.Tensor, fisher_remain: torch.Tensor, lambda1: float, lambda2: float
) -> torch.Tensor:
    """delta = min(lambda1, lambda2 / max r) * r with r = exp(log_ratio): one tensor's step size.

    lambda2 caps the largest entry of delta; lambda1 caps the scale of every entry's ratio.
    """
    r = log_ratio(fisher_forget, fisher_remain).exp()
    scale = torch.clamp(lambda2 / r.max(), max=lambda1)
    return (scale * r).to(fisher_forget.dtype)


@torch.no_grad()
def code_accuracies(
    model: nn.Module, codes: torch.Tensor, forget_classes: Sequence[int]
) -> tuple[float, float]:
    """(accuracy on the forgotten classes' codes, accuracy on the other codes); code c has label c."""
    hits = correct(model(codes), torch.arange(len(codes), device=codes.device)).cpu()
    forget = torch.zeros(len(codes), dtype=torch.bool)
    forget[list(forget_classes)] = True
    return float(hits[forget].float().mean()), float(hits[~forget].float().mean())


def code_score(forget_acc: float, remain_acc: float) -> float:
    """The selection criterion on the codes: (1 - forget accuracy) + remaining accuracy."""
    return (1.0 - forget_acc) + remain_acc


def choose_sign(score_plus: float, score_minus: float) -> int:
    """+1 when theta + delta scores strictly higher, else -1 (a tie goes to minus)."""
    return 1 if score_plus > score_minus else -1


@torch.no_grad()
def set_shifted_(
    model: nn.Module, theta: dict[str, torch.Tensor], deltas: dict[str, torch.Tensor], sign: int
) -> None:
    """Write theta + sign * delta into the model's parameters (buffers are left alone)."""
    for name, p in model.named_parameters():
        if name in deltas:
            p.copy_(theta[name] + sign * deltas[name].to(theta[name].dtype))


def check_classes(forget_classes: Sequence[int] | None, num_classes: int) -> tuple[list[int], list[int]]:
    """(forgotten classes, remaining classes), both non-empty."""
    forget = sorted({int(c) for c in (forget_classes or [])})
    if not forget:
        raise UserError("mnemonic unlearning needs the forgotten classes (a class-wise forget scenario)")
    remain = [c for c in range(num_classes) if c not in forget]
    if not remain:
        raise ConfigError("forget.classes", forget, "a subset that leaves at least one class remaining")
    return forget, remain


class MnemonicUnlearning(Method):
    """Mnemonic-code one-shot unlearning (Yamashita et al., ACML 2024, arXiv 2306.05670)."""

    needs = frozenset()  # neither D_f nor D_r: only the codes saved with the original model
    # Class-wise only: the codes are per class. Subclass forgetting works too: its one fine class is a whole
    # label with its own code.
    scenarios = CLASSWISE

    def __init__(self, t_mix: float = 0.3, lambda1: float = 1e-5, lambda2: float = 1e4):
        check_number("method.t_mix", t_mix, 0, 1, hint="a probability")
        for key, value in (("lambda1", lambda1), ("lambda2", lambda2)):
            check_number(f"method.{key}", value, 0, low_open=True)
        self.t_mix, self.lambda1, self.lambda2 = float(t_mix), float(lambda1), float(lambda2)

    def training_hook(self, seed: int, sample_shape: tuple[int, ...], num_classes: int) -> TrainingHook:
        cseed = code_seed(seed)
        codes = make_codes(num_classes, sample_shape, cseed)
        on_device: dict[tuple, torch.Tensor] = {}  # one copy of the codes per (device, dtype)
        t_mix = self.t_mix

        def apply(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
            key = (x.device, x.dtype)
            if key not in on_device:
                on_device[key] = codes.to(device=x.device, dtype=x.dtype)
            return mix_codes(x, y, on_device[key], t_mix, generator)

        spec = {
            "name": "mnemonic_codes",
            "t_mix": t_mix,
            "code_seed": cseed,
            "shape": [int(s) for s in sample_shape],
            "num_classes": int(num_classes),
        }
        return TrainingHook(spec=spec, state={"codes": codes}, apply=apply)

    def unlearn(self, model, data, ctx):
        codes = ctx.hook_state.get("codes")
        if codes is None:
            raise UserError(
                "mnemonic: the original model has no mnemonic codes "
                "(it was not trained with the mnemonic training hook)"
            )
        if len(codes) != ctx.num_classes:
            raise UserError(f"mnemonic: {len(codes)} codes saved for a {ctx.num_classes}-class model")
        forget, remain = check_classes(ctx.forget_classes, ctx.num_classes)
        codes = codes.to(ctx.device, torch.float32)
        model.eval()

        fisher_f = code_fisher(model, codes, forget, ctx.runtime.progress, "mnemonic fisher (forget codes)")
        fisher_r = code_fisher(model, codes, remain, ctx.runtime.progress, "mnemonic fisher (other codes)")
        deltas = {
            name: perturbation(fisher_f[name], fisher_r[name], self.lambda1, self.lambda2)
            for name in fisher_f
        }
        theta = {name: p.detach().clone() for name, p in model.named_parameters() if name in deltas}

        scores, accs = {}, {}
        for sign in (1, -1):
            set_shifted_(model, theta, deltas, sign)
            accs[sign] = code_accuracies(model, codes, forget)
            scores[sign] = code_score(*accs[sign])
        sign = choose_sign(scores[1], scores[-1])
        set_shifted_(model, theta, deltas, sign)
        check_weights_finite(model, "mnemonic perturbation")
        ctx.log(
            {
                "mnemonic/sign": sign,
                "mnemonic/code_forget_acc": accs[sign][0],
                "mnemonic/code_remain_acc": accs[sign][1],
                "mnemonic/max_delta": max(float(d.max()) for d in deltas.values()),
            }
        )
        return model
