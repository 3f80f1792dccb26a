"""Accuracy on every evaluated split: forget, retain, val, test (and test_forget for class scenarios).

`accuracy` is the one definition used everywhere (training logs, evaluation, shadow models, methods):
the share of samples whose arg-max logit is the label. UA (unlearning accuracy) in SalUn's tables is
100 - forget accuracy; here the raw fraction is stored.
"""

from __future__ import annotations

import torch

from unlearnbench.metrics.base import Column, Metric

SPLITS = ("forget", "retain", "val", "test", "test_forget")


def correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """bool [n]: the arg-max prediction equals the label."""
    return logits.argmax(dim=1) == labels


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy as a 0-d float tensor (stays on the device: no sync inside a training step)."""
    return correct(logits, labels).float().mean()


class Accuracy(Metric):
    """Top-1 accuracy per split; closer to Retrain is better."""

    def columns(self) -> list[Column]:
        return [
            Column(f"{split}_acc", order=10 * (i + 1), label=split.replace("test_forget", "test-f"))
            for i, split in enumerate(SPLITS)
        ]

    def per_model(self, outputs) -> dict[str, float]:
        return {
            f"{name}_acc": float(accuracy(out.logits, out.labels))
            for name, out in outputs.items()
            if len(out)
        }
