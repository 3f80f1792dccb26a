"""`salun`: SalUn, random-label unlearning confined to the salient weights.

Fan, Liu, Zhang, Wei, Wong, Liu, "SalUn: Empowering Machine Unlearning via Gradient-based Weight
Saliency in Both Image Classification and Generation", ICLR 2024 (arXiv 2310.12508).

1. Saliency, once, on the original model in eval mode: g = sum over D_f batches of the gradient of
   the GA loss -CE (batch mean); the mask keeps the top `mask_fraction` (default 0.5) of |g| over all
   parameters jointly (one global threshold, exactly round(k * N) weights).
2. RL (`random_label`): per epoch a pass over D_f with random wrong labels, then D_r with true
   labels, every gradient multiplied by the mask. Weight decay is folded into the gradient before
   masking, so weights outside the mask never change (see `relabel.masked_gradients`).
Defaults from the authors' CIFAR-10 commands: 10 epochs, SGD lr 0.013, momentum 0.9, weight decay
5e-4, batch 256, augmented data. Unlike the authors' mask script, no optimiser step is taken while
the saliency gradients are accumulated.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.config.checks import check_number
from unlearnbench.methods.lib.relabel import masked_gradients, saliency_mask
from unlearnbench.methods.random_label import RandomLabel


@dataclass(eq=False)
class SalUn(RandomLabel):
    tag = "salun"

    lr: float = 0.013  # the authors' --unlearn_lr
    mask_fraction: float = 0.5

    def __post_init__(self):
        check_number("method.mask_fraction", self.mask_fraction, 0, 1, low_open=True, hint="e.g. 0.5")
        self.mask_fraction = float(self.mask_fraction)

    def optimiser(self, model, data, ctx):
        batches = ctx.batches(data.forget, self.batch_size, augment=self.augment, stream="saliency")
        mask = saliency_mask(model, batches, self.mask_fraction, ctx)
        # Decay goes through the hook, inside the mask: SGD's own decay would move every weight.
        opt = self.sgd(model.parameters(), weight_decay=0.0)
        return opt, masked_gradients(mask, self.weight_decay)
