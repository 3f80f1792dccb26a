"""Accuracy on every evaluated split: forget, retain, val, test (and test_forget for class scenarios).

UA (unlearning accuracy) in SalUn's tables is 100 - forget accuracy; here the raw fraction is stored.
"""

from __future__ import annotations

from torchmetrics.functional.classification import multiclass_accuracy


class Accuracy:
    """Top-1 accuracy (micro-averaged) per split; direction: closer to Retrain is better."""

    def __call__(self, outputs) -> dict[str, float]:
        values = {}
        for name, out in outputs.items():
            if len(out) == 0:
                continue
            num_classes = out.logits.shape[1]
            acc = multiclass_accuracy(out.logits.argmax(1), out.labels, num_classes=num_classes, average="micro")
            values[f"{name}_acc"] = float(acc)
        return values

    def info(self) -> dict[str, dict]:
        names = ("forget_acc", "retain_acc", "val_acc", "test_acc", "test_forget_acc")
        return {name: {"direction": "closer to retrain", "ideal": "retrain value"} for name in names}
