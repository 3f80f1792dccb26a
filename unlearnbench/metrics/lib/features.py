"""Per-sample attack features from logits and labels (no models involved).

Every function takes ``logits`` (float tensor [N, K], any device/dtype) and ``labels`` (int64 tensor
[N]) and returns a float64 numpy array [N] (``probabilities`` returns [N, K]). Work is done in
float64 from log-softmax, so confident predictions (p_y -> 1) stay finite.

Features used by the membership-inference attacks:
- true_prob / "confidence": p_y (SalUn / l1-sparse MIA-Efficacy default).
- ce_loss: -log p_y (NeurIPS 2023 unlearning starting-kit loss attack).
- entropy: -sum_k p_k log p_k (natural log).
- modified_entropy: Song & Mittal, "Systematic Evaluation of Privacy Risks of Machine Learning
  Models", USENIX Security 2021:  -(1 - p_y) log p_y - sum_{k != y} p_k log(1 - p_k).
  (The SalUn reference code's `m_entropy` deviates from this definition; we follow the paper.)
- correctness: 1.0 if argmax == y else 0.0.
- logit_scaled_confidence: log(p_y + eps) - log(sum_{k != y} p_k + eps) (LiRA, Carlini et al. S&P
  2022; NeurIPS 2023 challenge metric, Triantafillou et al. arXiv 2406.09073, with eps = 1e-45).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from unlearnbench.config.checks import check_choice
from unlearnbench.metrics.accuracy import correct


def _log_softmax_and_labels(logits, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 CPU log-probabilities [N, K] and int64 CPU labels [N], shapes checked."""
    logits = torch.as_tensor(logits).detach().to("cpu", torch.float64)
    labels = torch.as_tensor(labels).detach().to("cpu", torch.int64)
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected logits [N, K] and labels [N], got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1] - 1}]")
    return torch.log_softmax(logits, dim=1), labels


def _true_log_prob(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return log_probs.gather(1, labels[:, None]).squeeze(1)


def _log_mass_without(log_probs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log(sum_{k != index} p_k) per row, by logsumexp over the other classes (no 1 - p)."""
    masked = log_probs.scatter(1, index[:, None], float("-inf"))
    return torch.logsumexp(masked, dim=1)


def _log1m_probs(log_probs: torch.Tensor) -> torch.Tensor:
    """log(1 - p_k) for every class, accurate also when p_k ~ 1.

    Only the arg-max class can have p_k > 1/2; for it we use the exact log of the other classes'
    mass, elsewhere log1p(-p_k) is accurate.
    """
    out = torch.log1p(-log_probs.exp())
    top = log_probs.argmax(dim=1)
    out.scatter_(1, top[:, None], _log_mass_without(log_probs, top)[:, None])
    return out


def true_prob(logits, labels) -> np.ndarray:
    """p_y, the softmax probability of the true label."""
    log_probs, labels = _log_softmax_and_labels(logits, labels)
    return _true_log_prob(log_probs, labels).exp().numpy()


def ce_loss(logits, labels) -> np.ndarray:
    """Per-sample cross entropy -log p_y."""
    log_probs, labels = _log_softmax_and_labels(logits, labels)
    return (-_true_log_prob(log_probs, labels)).numpy()


def entropy(logits, labels) -> np.ndarray:
    """Prediction entropy -sum_k p_k log p_k (nats); `labels` only checked for shape."""
    log_probs, _ = _log_softmax_and_labels(logits, labels)
    probs = log_probs.exp()
    # 0 * log 0 = 0 (log_probs may be -inf for -inf logits).
    terms = torch.where(probs > 0, probs * log_probs, torch.zeros_like(probs))
    return (-terms.sum(dim=1)).numpy()


def modified_entropy(logits, labels) -> np.ndarray:
    """Song & Mittal (2021) modified entropy: -(1-p_y) log p_y - sum_{k!=y} p_k log(1-p_k).

    Low for confident correct predictions, high for confident wrong ones (unlike plain entropy).
    """
    log_probs, labels = _log_softmax_and_labels(logits, labels)
    probs = log_probs.exp()
    log1m = _log1m_probs(log_probs)
    is_true = torch.zeros_like(probs, dtype=torch.bool).scatter_(1, labels[:, None], True)
    # True class: (1 - p_y) * log p_y; other classes: p_k * log(1 - p_k). 0 * (-inf) -> 0.
    weight = torch.where(is_true, log1m.exp(), probs)
    log_term = torch.where(is_true, log_probs, log1m)
    terms = torch.where(weight > 0, weight * log_term, torch.zeros_like(weight))
    return (-terms.sum(dim=1)).numpy()


def correctness(logits, labels) -> np.ndarray:
    """1.0 where the arg-max prediction equals the label, else 0.0."""
    log_probs, labels = _log_softmax_and_labels(logits, labels)
    return correct(log_probs, labels).to(torch.float64).numpy()


def probabilities(logits, labels) -> np.ndarray:
    """Full softmax vector [N, K] (the SalUn reference's "prob" MIA variant)."""
    log_probs, _ = _log_softmax_and_labels(logits, labels)
    return log_probs.exp().numpy()


def logit_scaled_confidence(logits, labels, eps: float = 1e-45) -> np.ndarray:
    """phi = log(p_y + eps) - log(sum_{k != y} p_k + eps), computed in log space.

    log(p + eps) is evaluated as logaddexp(log p, log eps), and log(sum_{k!=y} p_k) as a logsumexp
    over the other classes, so phi stays finite and accurate for p_y ~ 1 (where 1 - p_y would
    cancel). With eps = 1e-45 (the NeurIPS 2023 challenge value) |phi| <= ~103.6.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    log_probs, labels = _log_softmax_and_labels(logits, labels)
    log_true = _true_log_prob(log_probs, labels)
    log_rest = _log_mass_without(log_probs, labels)
    if eps > 0:
        log_eps = torch.full_like(log_true, math.log(eps))
        log_true = torch.logaddexp(log_true, log_eps)
        log_rest = torch.logaddexp(log_rest, log_eps)
    return (log_true - log_rest).numpy()


FeatureFn = Callable[[torch.Tensor, torch.Tensor], np.ndarray]

# Options of the MIA-Efficacy metric's `feature` (names as in the SalUn reference).
FEATURES: dict[str, FeatureFn] = {
    "confidence": true_prob,
    "correctness": correctness,
    "entropy": entropy,
    "modified_entropy": modified_entropy,
    "prob": probabilities,
}


def get_feature(name: str, key: str = "feature") -> FeatureFn:
    """Look up a feature by name; unknown names raise ConfigError naming `key`."""
    return FEATURES[check_choice(key, name, sorted(FEATURES))]
