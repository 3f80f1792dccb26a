"""`boundary_expanding`: Boundary Expanding, forget images pushed into an extra "shadow" class, which is then
pruned away.

Chen, Gao, Liu, Peng, Zhou, "Boundary Unlearning: Rapid Forgetting of Deep Networks via Shifting the Decision
Space", CVPR 2023 (arXiv 2303.11570), section 3.2; a row of SalUn's Table 1 (Fan et al., ICLR 2024; code:
OPTML-Group/Unlearn-Saliency, Classification/unlearn/boundary_ex.py). Steps:
  1. widen the linear head by one output (the shadow class), the old rows copied, the new row initialised as
     nn.Linear initialises (uniform in +-1/sqrt(fan_in)), drawn from the run's stream "shadow_class";
  2. fine-tune the whole model in train mode on D_f with every label set to the shadow class (CE, SGD);
  3. drop the shadow row again (the paper's pruning), so the model keeps its num_classes outputs.
OPTML's code stops after step 2 and evaluates the widened model; step 3 is the paper's, and keeps the model's
output shape, which every metric here relies on. Authors' defaults (OPTML's arg_parser, as their BE runs use
them): 10 epochs, SGD lr 0.01, momentum 0.9, weight decay 5e-4, batches of 256, the training transform (crop and
flip) on the forget images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.errors import UserError
from unlearnbench.methods.lib.common import SGDMethod


def widened_head(head: nn.Linear, generator: torch.Generator) -> nn.Linear:
    """A copy of `head` with one more output row, drawn as nn.Linear draws its initial weights."""
    wide = nn.Linear(head.in_features, head.out_features + 1, bias=head.bias is not None)
    wide = wide.to(device=head.weight.device, dtype=head.weight.dtype)
    bound = 1.0 / math.sqrt(head.in_features)
    with torch.no_grad():
        wide.weight[:-1] = head.weight
        row = torch.rand(head.in_features, generator=generator) * 2 * bound - bound
        wide.weight[-1] = row.to(wide.weight)
        if head.bias is not None:
            wide.bias[:-1] = head.bias
            wide.bias[-1] = float(torch.rand((), generator=generator) * 2 * bound - bound)
    return wide


def pruned_head(wide: nn.Linear) -> nn.Linear:
    """`wide` without its last output row."""
    head = nn.Linear(wide.in_features, wide.out_features - 1, bias=wide.bias is not None)
    head = head.to(device=wide.weight.device, dtype=wide.weight.dtype)
    with torch.no_grad():
        head.weight.copy_(wide.weight[:-1])
        if wide.bias is not None:
            head.bias.copy_(wide.bias[:-1])
    return head


@dataclass(eq=False)
class BoundaryExpanding(SGDMethod):
    needs = frozenset({"forget"})

    def unlearn(self, model, data, ctx):
        if not isinstance(getattr(model, "head", None), nn.Linear):
            raise UserError(
                "boundary_expanding needs a model whose `head` is an nn.Linear (every model here)"
            )
        shadow = model.head.out_features
        model.head = widened_head(model.head, torch.Generator().manual_seed(ctx.seed_for("shadow_class")))

        def to_shadow_class(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(m(x), torch.full_like(y, shadow))

        self.sgd_epochs(model, data.forget, to_shadow_class, ctx, "boundary_expanding")
        model.head = pruned_head(model.head)
        return model
