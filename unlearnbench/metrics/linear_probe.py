"""Linear-probe recovery: how much of the forget set a linear classifier on the frozen penultimate features
still gets right.

Gao, Unal, Rangamani & Zhu, "An Illusion of Unlearning? Assessing Machine Unlearning Through Internal
Representations" (AISTATS 2026, arXiv 2604.08271) show that many methods reach a low forget accuracy by
tilting the last layer away from features that still separate the forgotten data: a linear probe fitted on
those features recovers near-original accuracy. Kim, Cha & Kim (arXiv 2503.06991) make the same point with
feature-transfer evaluations.

The probe: the model's penultimate features of the `fit_on` splits (default: retain, test, and in class-wise
scenarios the forgotten classes' test images, `test_forget`: without labelled samples of a forgotten class a
probe could never name it), at most `max_fit_samples` of them (a seeded draw), standardised with the fit set's
mean and deviation; a multinomial `LogisticRegression` (lbfgs, balanced class weights so that a forgotten
class with few test images still counts). The value is its accuracy on D_f. The samples, the draw and the
solver are the same for the original, unlearned and Retrain models; the ideal is Retrain's value.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from unlearnbench.config.checks import check_int, check_number
from unlearnbench.errors import ConfigError
from unlearnbench.metrics.base import Column, Metric

FIT_SPLITS = ("retain", "val", "test", "test_forget")  # every split but the one the probe is scored on


def probe_accuracy(
    fit_x: np.ndarray,
    fit_y: np.ndarray,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    c: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Accuracy on (eval_x, eval_y) of a multinomial logistic regression fitted on standardised (fit_x, fit_y)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if len(eval_y) == 0:
        return float("nan")
    classes = np.unique(fit_y)
    mean, std = fit_x.mean(axis=0), fit_x.std(axis=0)
    std[std == 0] = 1.0  # a constant (e.g. dead) unit carries nothing: keep it at zero
    fit_z, eval_z = (fit_x - mean) / std, (eval_x - mean) / std
    if len(classes) < 2:  # a one-class fit set: the probe can only answer that class
        return float(np.mean(eval_y == classes[0]))
    probe = LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced")
    with warnings.catch_warnings():
        # Features a method collapsed may not converge in max_iter; the probe's answer is still the value.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(fit_z.astype(np.float64), fit_y)
    return float(np.mean(probe.predict(eval_z.astype(np.float64)) == eval_y))


class LinearProbe(Metric):
    """`probe_forget_acc`: a linear probe's accuracy on D_f from frozen penultimate features (module docstring)."""

    needs_features = True

    def __init__(
        self,
        fit_on: Sequence[str] = ("retain", "test", "test_forget"),
        max_fit_samples: int | None = 10000,
        C: float = 1.0,  # noqa: N803  (scikit-learn's name for the inverse regularisation strength)
        max_iter: int = 1000,
        seed: int = 0,
    ):
        key = "eval.metrics.linear_probe"
        fit_on = [fit_on] if isinstance(fit_on, str) else list(fit_on)
        bad = [s for s in fit_on if s not in FIT_SPLITS]
        if not fit_on or bad:
            raise ConfigError(f"{key}.fit_on", bad or fit_on, f"a non-empty list of {', '.join(FIT_SPLITS)}")
        self.fit_on = tuple(dict.fromkeys(fit_on))
        self.max_fit_samples = check_int(f"{key}.max_fit_samples", max_fit_samples, 2, allow_none=True)
        self.c = float(check_number(f"{key}.C", C, 0.0, low_open=True))
        self.max_iter = check_int(f"{key}.max_iter", max_iter, 1)
        self.seed = check_int(f"{key}.seed", seed, 0)

    def fit_set(self, outputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """The probe's training features and labels: the `fit_on` splits present, then the seeded draw."""
        parts = [outputs[s] for s in self.fit_on if s in outputs and len(outputs[s])]
        if not parts:
            present = [s for s in FIT_SPLITS if s in outputs and len(outputs[s])]
            raise ConfigError(
                "eval.metrics.linear_probe.fit_on", list(self.fit_on), f"a list of {', '.join(present)}"
            )
        x = np.concatenate([p.features.numpy() for p in parts])
        y = np.concatenate([p.labels.numpy() for p in parts])
        if self.max_fit_samples is not None and len(y) > self.max_fit_samples:
            keep = np.sort(
                np.random.default_rng(self.seed).choice(len(y), self.max_fit_samples, replace=False)
            )
            x, y = x[keep], y[keep]
        return x, y

    def per_model(self, outputs) -> dict[str, float]:
        forget = outputs["forget"]
        if not len(forget):
            return {}
        fit_x, fit_y = self.fit_set(outputs)
        acc = probe_accuracy(
            fit_x, fit_y, forget.features.numpy(), forget.labels.numpy(), self.c, self.max_iter
        )
        return {"probe_forget_acc": acc}

    def columns(self) -> list[Column]:
        return [
            Column(
                "probe_forget_acc",
                order=130,
                label="probe-f",
                extra={
                    "definition": "accuracy on D_f of a logistic-regression probe on the frozen penultimate features, "
                    f"fitted on {' + '.join(self.fit_on)} (at most {self.max_fit_samples} samples, the same for "
                    "every model); near the original's value: the features still hold the forgotten data",
                    "paper": "Gao et al., An Illusion of Unlearning? (AISTATS 2026)",
                },
            )
        ]
