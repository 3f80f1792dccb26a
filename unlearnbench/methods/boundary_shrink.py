"""`boundary_shrink`: Boundary Shrink, relabelling each forget image with its FGSM neighbour's class.

Chen, Gao, Liu, Peng, Zhou, "Boundary Unlearning: Rapid Forgetting of Deep Networks via Shifting
the Decision Space", CVPR 2023 (arXiv 2303.11570). Defined there for class-wise forgetting; SalUn's benchmark
(Fan et al., ICLR 2024, Table 1) also runs it on random forgetting, which works the same way (each forget image
only needs its own neighbour's class), so every scenario is allowed.

For each forget batch, on a frozen copy of the ORIGINAL model in eval mode:
  x_adv = round(255 * clamp(x + eps * sign(grad_x CE(f0(x), y)), 0, 1)) / 255   (FGSM, [0, 1] pixels)
  label = argmax over all classes of f0(x_adv)
i.e. the neighbour's predicted class; when the attack fails (the neighbour stays in the true class)
the sample keeps its true label, as in the authors' code (and SalUn's reimplementation).
`exclude_true_class: true` instead takes the best class other than the true one. The model, in train
mode, then minimises CE(f(x), label) on the clean images. Authors' defaults: eps 0.1, 10 epochs, SGD
lr 1e-5, momentum 0.9, no weight decay, batches of 64, no augmentation (their CIFAR-10 transform is
ToTensor and Normalize only; `augment: true` crops and flips the forget images, as SalUn's
reimplementation does).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.config.checks import check_number
from unlearnbench.methods.lib.common import SGDMethod, train_epochs
from unlearnbench.methods.lib.importance import frozen_copy


def fgsm_neighbour(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One FGSM step of size eps in [0, 1] pixel space, clamped and rounded to 8-bit levels."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x).float(), y)
    (grad,) = torch.autograd.grad(loss, x)
    x_adv = (x.detach() + eps * grad.sign()).clamp(0.0, 1.0)
    return torch.round(x_adv * 255.0) / 255.0


@torch.no_grad()
def _neighbour_class(
    model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, exclude_true_class: bool
) -> torch.Tensor:
    logits = model(x_adv).float()
    if exclude_true_class:
        logits = logits.scatter(1, y[:, None], float("-inf"))
    return logits.argmax(dim=1)


def neighbour_labels(
    original: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, exclude_true_class: bool = False
) -> torch.Tensor:
    """The class the original model predicts for each sample's FGSM neighbour (see module docstring)."""
    return _neighbour_class(original, fgsm_neighbour(original, x, y, eps), y, exclude_true_class)


def shrink_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    original: nn.Module,
    eps: float,
    exclude_true_class: bool,
) -> torch.Tensor:
    """CE of the clean images against their neighbours' labels."""
    with torch.enable_grad():
        labels = neighbour_labels(original, x, y, eps, exclude_true_class)
    return F.cross_entropy(model(x), labels)


@dataclass(eq=False)
class BoundaryShrink(SGDMethod):
    needs = frozenset({"forget"})

    # The authors' defaults where they differ from the SGD methods' (see conf/method/boundary_shrink.yaml).
    lr: float = 1e-5
    weight_decay: float = 0.0
    batch_size: int = 64
    augment: bool = False
    eps: float = 0.1
    exclude_true_class: bool = False

    def __post_init__(self):
        check_number("method.eps", self.eps, 0, 1, low_open=True, hint="FGSM step in [0, 1] pixel units")

    def unlearn(self, model, data, ctx):
        original = frozen_copy(model)
        model.train()
        opt = self.sgd(model.parameters())
        batches = ctx.batches(data.forget, self.batch_size, shuffle=True, augment=self.augment)
        step = partial(
            shrink_loss, original=original, eps=self.eps, exclude_true_class=self.exclude_true_class
        )
        return train_epochs(model, self.epochs, batches, step, opt, ctx, "boundary_shrink")
