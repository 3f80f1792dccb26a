"""Metric objects on hand-made model outputs whose answer is known."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.errors import ConfigError
from unlearnbench.evaluation import SplitOutputs
from unlearnbench.metrics.accuracy import Accuracy
from unlearnbench.metrics.mia_efficacy import MIAEfficacy


def outputs_with_confidence(p_true: torch.Tensor, num_classes: int = 4) -> SplitOutputs:
    """Logits whose softmax gives probability `p_true` to label 0 and shares the rest equally."""
    n = len(p_true)
    rest = (1 - p_true) / (num_classes - 1)
    probs = torch.cat([p_true[:, None], rest[:, None].expand(n, num_classes - 1)], dim=1)
    return SplitOutputs(torch.log(probs).float(), torch.zeros(n, dtype=torch.long))


def test_mia_efficacy_forget_like_test_set_is_all_non_member():
    gen = torch.Generator().manual_seed(0)
    members = 0.95 + 0.04 * torch.rand(300, generator=gen)  # training data: confident
    nonmembers = 0.30 + 0.30 * torch.rand(300, generator=gen)  # unseen data: unsure
    forget_unseen = 0.30 + 0.30 * torch.rand(100, generator=gen)
    forget_memorised = 0.95 + 0.04 * torch.rand(100, generator=gen)
    metric = MIAEfficacy("confidence")
    base = {"retain": outputs_with_confidence(members), "test": outputs_with_confidence(nonmembers)}
    unseen = metric.per_model({**base, "forget": outputs_with_confidence(forget_unseen)})["mia_efficacy"]
    memorised = metric.per_model({**base, "forget": outputs_with_confidence(forget_memorised)})[
        "mia_efficacy"
    ]
    assert unseen == pytest.approx(1.0, abs=0.02)
    assert memorised == pytest.approx(0.0, abs=0.02)


def test_mia_efficacy_members_are_the_first_test_size_retain_samples():
    # Retain = 50 confident samples followed by 1000 unsure ones; test has 50 samples. Only the first 50
    # retain samples may act as members, so the attack separates confident from unsure.
    gen = torch.Generator().manual_seed(1)
    retain = torch.cat(
        [0.97 + 0.02 * torch.rand(50, generator=gen), 0.3 + 0.3 * torch.rand(1000, generator=gen)]
    )
    test = 0.3 + 0.3 * torch.rand(50, generator=gen)
    forget = 0.97 + 0.02 * torch.rand(40, generator=gen)
    score = MIAEfficacy().per_model(
        {
            "retain": outputs_with_confidence(retain),
            "test": outputs_with_confidence(test),
            "forget": outputs_with_confidence(forget),
        }
    )["mia_efficacy"]
    assert score < 0.1


def test_mia_efficacy_records_how_much_of_the_forget_set_is_extrapolated():
    gen = torch.Generator().manual_seed(2)
    retain = 0.95 + 0.05 * torch.rand(300, generator=gen)  # class-wise: everything the SVC sees is confident
    test = 0.90 + 0.10 * torch.rand(300, generator=gen)
    base = {"retain": outputs_with_confidence(retain), "test": outputs_with_confidence(test)}
    metric = MIAEfficacy()
    forgotten = metric.per_model(
        {**base, "forget": outputs_with_confidence(0.001 + 0.01 * torch.rand(100, generator=gen))}
    )
    kept = metric.per_model(
        {**base, "forget": outputs_with_confidence(0.92 + 0.07 * torch.rand(100, generator=gen))}
    )
    assert forgotten["mia_efficacy_extrapolated"] == 1.0
    assert kept["mia_efficacy_extrapolated"] < 0.1
    info = metric.info()["mia_efficacy_extrapolated"]
    assert info["flags"] == "mia_efficacy" and info["threshold"] == 0.5


def test_unknown_mia_feature_is_a_config_error():
    with pytest.raises(ConfigError, match="feature"):
        MIAEfficacy("loss_of_something")


def test_accuracy_per_split():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    out = {
        "forget": SplitOutputs(logits, torch.tensor([0, 1, 1, 1])),
        "test": SplitOutputs(logits[:2], torch.tensor([0, 0])),
    }
    values = Accuracy().per_model(out)
    assert values == {"forget_acc": pytest.approx(0.5), "test_acc": pytest.approx(0.5)}
