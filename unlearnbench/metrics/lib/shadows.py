"""Shadow models shared by the per-example attacks (LiRA, U-LiRA) and the challenge score.

Two families, both produced through the run's `ShadowContext` (so every model trained from scratch
goes through the model cache, keyed by its training positions and seed):

- Half-forget shadows (LiRA, U-LiRA), k = 0..N-1: a seeded random half F_k of D_f (exactly
  floor(|D_f| / 2) samples, generator seeded by (run seed, seed_offset + k));
  `retrained_k` = trained from scratch without F_k, seed 1000 + seed_offset + k;
  `unlearned_k` = the method applied to the run's original model to forget F_k, same seed.
- Challenge shadows (NeurIPS 2023 score), k = 0..N-1, seed 2000 + seed_offset + k, as the challenge:
  `unlearned_k` = the method applied to the run's one original model to forget all of D_f, with that
  seed; `retrained_k` = trained from scratch on D_r with that seed.

Only the models' outputs on the splits the metrics read are kept (memoised on the context object),
never the models: N ResNet-18s would otherwise sit in (GPU) memory. Metrics asking for the same
shadow in one run (LiRA and U-LiRA both use `retrained_k`) get the memoised outputs, so together
they train N models per kind, not 2N.

Models trained from scratch are asked for a family at a time (`retrained_many`, when the context has
it): the context trains the missing ones together as one stacked group
(`eval.batched_shadows`, training/batched.py) and yields them one by one, each dropped once its
outputs are computed. Unlearning runs stay one at a time (a method is arbitrary code).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import partial

import numpy as np
import torch
from tqdm import tqdm

from unlearnbench.config.checks import check_int
from unlearnbench.errors import UserError
from unlearnbench.evaluation import SplitOutputs
from unlearnbench.metrics.accuracy import accuracy
from unlearnbench.metrics.lib.features import logit_scaled_confidence

HALF_SEED_BASE = 1000
CHALLENGE_SEED_BASE = 2000
HALF_SPLITS = ("forget", "test")
CHALLENGE_SPLITS = ("forget", "retain", "test")
KINDS = ("retrained", "unlearned")
_STORE_ATTR = "_unlearnbench_shadow_outputs"

Outputs = dict[str, SplitOutputs]


def check_options(metric: str, num_shadows: int, seed_offset: int) -> tuple[int, int]:
    """Validated (num_shadows, seed_offset) of the metric configured at eval.metrics.<metric>."""
    return (
        check_int(f"eval.metrics.{metric}.num_shadows", num_shadows, 2),
        check_int(f"eval.metrics.{metric}.seed_offset", seed_offset, 0),
    )


def half_masks(n_forget: int, num_shadows: int, run_seed: int, seed_offset: int = 0) -> torch.Tensor:
    """bool [num_shadows, n_forget]: row k marks F_k, exactly n_forget // 2 samples, seeded per k."""
    if n_forget < 2:
        raise UserError(f"shadow-model attacks need >= 2 forget samples, got {n_forget}")
    masks = torch.zeros(num_shadows, n_forget, dtype=torch.bool)
    for k in range(num_shadows):
        rng = np.random.default_rng([int(run_seed), int(seed_offset) + k])
        masks[k, torch.from_numpy(rng.permutation(n_forget)[: n_forget // 2])] = True
    return masks


def phi(outputs: SplitOutputs) -> np.ndarray:
    """Logit-scaled confidence of every sample (eps 1e-45, the challenge's value)."""
    return logit_scaled_confidence(outputs.logits, outputs.labels)


def stack_phi(outputs: Iterable[Outputs], split: str) -> np.ndarray:
    """[num_models, n] confidences of `split` under each model."""
    return np.stack([phi(o[split]) for o in outputs])


def _store(ctx) -> dict:
    store = getattr(ctx, _STORE_ATTR, None)
    if store is None:
        store = {}
        setattr(ctx, _STORE_ATTR, store)
    return store


def _memoised(ctx, key: tuple, make: Callable[[], torch.nn.Module], splits: tuple[str, ...]) -> Outputs:
    """Outputs of the model `make()` builds on `splits`, computed once per context and key."""
    store = _store(ctx)
    if key not in store:
        model = make()
        store[key] = {name: ctx.predict(model, getattr(ctx.splits, name)) for name in splits}
        del model  # keep outputs only (see module docstring)
    return store[key]


def _memoise_many(
    ctx,
    keys: list[tuple],
    make_many: Callable[[list[int]], Iterable[torch.nn.Module]],
    splits: tuple[str, ...],
) -> None:
    """Memoise the outputs of every key not stored yet from one request for all their models:
    `make_many(positions)` yields them in order, one at a time (the context may train them together)."""
    store = _store(ctx)
    todo = [i for i, key in enumerate(keys) if key not in store]
    if todo:
        for i, model in zip(todo, make_many(todo), strict=True):
            store[keys[i]] = {name: ctx.predict(model, getattr(ctx.splits, name)) for name in splits}
            del model  # keep outputs only (see module docstring)


def _mask_digest(mask: torch.Tensor) -> str:
    return hashlib.sha256(mask.to(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def _progress(ctx, n: int, desc: str):
    return tqdm(range(n), desc=desc, unit="model", disable=not ctx.runtime.progress, leave=False)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"shadow kind must be one of {KINDS}, got {kind!r}")


def _run_hook_state(ctx) -> dict:
    """The run's original model's hook state (e.g. Mnemonic codes): the hook rebuilds it from its seed."""
    return dict(ctx.hook.state) if getattr(ctx, "hook", None) is not None else {}


def half_shadows(
    ctx, kind: str, num_shadows: int, seed_offset: int = 0
) -> tuple[torch.Tensor, list[Outputs]]:
    """(masks [N, |D_f|], per-shadow outputs on forget and test) of the half-forget family."""
    _check_kind(kind)
    masks = half_masks(len(ctx.splits.forget), num_shadows, ctx.seed, seed_offset)
    seeds = [HALF_SEED_BASE + seed_offset + k for k in range(num_shadows)]
    keys = [("half", kind, seed, _mask_digest(mask)) for seed, mask in zip(seeds, masks)]
    if kind == "retrained" and hasattr(ctx, "retrained_many"):
        _memoise_many(
            ctx, keys, lambda todo: ctx.retrained_many(masks[todo], [seeds[i] for i in todo]), HALF_SPLITS
        )
    hook_state = _run_hook_state(ctx)
    outputs = []
    for k in _progress(ctx, num_shadows, f"shadows: {kind} without a random half of D_f"):
        if kind == "retrained":
            make = partial(ctx.retrained, masks[k], seed=seeds[k])
        else:
            make = partial(ctx.unlearned, masks[k], seed=seeds[k], hook_state=hook_state)
        outputs.append(_memoised(ctx, keys[k], make, HALF_SPLITS))
    return masks, outputs


def challenge_shadows(ctx, kind: str, num_shadows: int, seed_offset: int = 0) -> list[Outputs]:
    """Per-model outputs on forget, retain and test of the challenge family (one seed per model)."""
    _check_kind(kind)
    everything = torch.ones(len(ctx.splits.forget), dtype=torch.bool)
    seeds = [CHALLENGE_SEED_BASE + seed_offset + k for k in range(num_shadows)]
    keys = [("challenge", kind, seed) for seed in seeds]
    if kind == "retrained" and hasattr(ctx, "retrained_many"):
        _memoise_many(
            ctx,
            keys,
            lambda todo: ctx.retrained_many(everything.expand(len(todo), -1), [seeds[i] for i in todo]),
            CHALLENGE_SPLITS,
        )
    outputs = []
    for k in _progress(ctx, num_shadows, f"shadows: challenge {kind}"):
        if kind == "retrained":
            make = partial(ctx.retrained, everything, seed=seeds[k])
        else:  # the run's original model, unlearned with this seed
            make = partial(ctx.unlearned, everything, seed=seeds[k], hook_state=_run_hook_state(ctx))
        outputs.append(_memoised(ctx, keys[k], make, CHALLENGE_SPLITS))
    return outputs


def mean_accuracy(outputs: Iterable[Outputs], split: str) -> float:
    """Mean over models of the top-1 accuracy on `split`."""
    return float(np.mean([float(accuracy(o[split].logits, o[split].labels)) for o in outputs]))
