"""IU (influence unlearning with the WoodFisher recursion) and BE (Boundary Expanding), SalUn Table 1's rows
(their end-to-end runs, split access and bf16 are covered with every method in test_methods_contract.py and
test_precision.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.data.batches import Augment
from unlearnbench.data.splits import Split, Splits
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import GrantedSplits, UnlearnContext
from unlearnbench.methods.boundary_expanding import BoundaryExpanding, pruned_head, widened_head
from unlearnbench.methods.iu import InfluenceUnlearning, woodfisher_inverse_product
from unlearnbench.models.common import Classifier
from unlearnbench.runtime import Runtime

C = 3


class Linear(Classifier):
    def __init__(self, inputs: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.head = nn.Linear(inputs, C)

    def features(self, x):
        return x.flatten(1)


def setup(method, n_forget: int = 6, n_retain: int = 30):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_forget + n_retain, 1, 2, 2), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, C, (n_forget + n_retain,), generator=gen)
    forget = Split("forget", x[:n_forget], y[:n_forget], torch.arange(n_forget))
    retain = Split("retain", x[n_forget:], y[n_forget:], torch.arange(n_forget, n_forget + n_retain))
    splits = Splits(train=retain, forget=forget, retain=retain, val=retain, test=retain, num_classes=C)
    ctx = UnlearnContext(
        runtime=Runtime(device=torch.device("cpu"), progress=False),
        seed=0,
        num_classes=C,
        forget_ratio=n_forget / (n_forget + n_retain),
        forget_classes=None,
        augment=Augment(),
    )
    return GrantedSplits(splits, method.needs, "test"), ctx, forget, retain


def flat_grad_sum(model, split):
    model.zero_grad()
    F.cross_entropy(model(split.x.float() / 255), split.y, reduction="sum").backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_woodfisher_recursion_matches_its_two_sample_closed_form():
    g1, g2, v = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0]), torch.tensor([3.0, 1.0])
    n = 10
    expected = v - (v @ g2) / (n + g1 @ g2) * g1  # the first sample only seeds o
    assert torch.allclose(woodfisher_inverse_product(v, iter([g1, g2]), n), expected)


def test_iu_moves_the_weights_by_alpha_times_the_reweighted_gradient_difference():
    """With a huge N the WoodFisher step is v itself: theta' - theta = alpha * (sum_f g / n - n_f sum_r g /
    (n n_r)), every gradient at the original weights, un-augmented."""
    method = InfluenceUnlearning(alpha=0.5, fisher_n=10**12, augment=False)
    data, ctx, forget, retain = setup(method)
    model = Linear()
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    n_f, n_r = len(forget), len(retain)
    n = n_f + n_r
    v = flat_grad_sum(model, forget) / n - flat_grad_sum(model, retain) * n_f / (n * n_r)
    after = method.unlearn(copy.deepcopy(model), data, ctx)
    moved = torch.cat([p.detach().flatten() for p in after.parameters()]) - before
    assert torch.allclose(moved, 0.5 * v, atol=1e-6)


def test_iu_rejects_a_non_positive_alpha():
    with pytest.raises(ConfigError, match="method.alpha"):
        InfluenceUnlearning(alpha=0.0)


def test_be_widens_the_head_by_one_seeded_row_and_prunes_it_back():
    head = nn.Linear(4, C)
    wide = widened_head(head, torch.Generator().manual_seed(1))
    again = widened_head(head, torch.Generator().manual_seed(1))
    assert wide.out_features == C + 1 and torch.equal(wide.weight[:C], head.weight)
    assert torch.equal(wide.weight, again.weight) and torch.equal(wide.bias, again.bias)
    assert wide.weight[C].abs().max() <= 0.5  # 1 / sqrt(fan_in 4), as nn.Linear draws
    back = pruned_head(wide)
    assert back.out_features == C and torch.equal(back.weight, head.weight)


def test_be_trains_the_forget_set_into_the_shadow_class_and_keeps_the_output_shape():
    method = BoundaryExpanding(epochs=30, lr=0.5, batch_size=6, augment=False, weight_decay=0.0)
    data, ctx, forget, _ = setup(method)
    model = Linear()
    x = forget.x.float() / 255
    true_logit_before = model(x).gather(1, forget.y[:, None]).mean()
    after = method.unlearn(copy.deepcopy(model), data, ctx)
    assert after(x).shape == (len(forget), C)  # the shadow row is pruned again
    # pushing every forget image into the shadow class lowers the logits of the real classes
    assert after(x).gather(1, forget.y[:, None]).mean() < true_logit_before - 0.5
