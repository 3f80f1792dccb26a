"""Evaluation: one un-augmented eval-mode pass per model and split, shared by every metric."""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from unlearnbench.data.splits import Split, Splits, with_forget_subset
from unlearnbench.errors import UserError
from unlearnbench.metrics.base import Metric
from unlearnbench.models.common import Classifier
from unlearnbench.runtime import Runtime

if TYPE_CHECKING:  # types only: the metrics' worker processes import this module, not the training code
    from unlearnbench.methods.base import TrainingHook
    from unlearnbench.training.models import TrainedModels
    from unlearnbench.unlearning import Unlearning


@dataclass
class SplitOutputs:
    """Logits (float32, CPU) and labels of one split under one model; derived quantities cached."""

    logits: torch.Tensor
    labels: torch.Tensor
    # Penultimate features [N, D] (float32, CPU), when a metric needs them.
    features: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits.double(), dim=1)


@torch.no_grad()
def predict(model: nn.Module, split: Split, runtime: Runtime, features: bool = False) -> SplitOutputs:
    """Logits of `split` in eval mode, batched on the runtime device, inputs in [0, 1]; with `features`, also
    the penultimate features, from the same pass (the logits are the head's output on them, as `forward`)."""
    if features and not isinstance(model, Classifier):
        raise UserError(
            f"the evaluation needs penultimate features, which model {type(model).__name__} does not expose "
            "(a model must subclass unlearnbench.models.common.Classifier); drop the feature metrics from "
            "eval.metrics"
        )
    model.eval()
    out, feats = [], []
    bs = runtime.eval_batch_size
    for i in range(0, len(split), bs):
        x = runtime.model_input(split.x[i : i + bs])
        with runtime.autocast():
            if features:
                f = model.features(x)
                feats.append(f.float().cpu())
                out.append(model.head(f).float().cpu())
            else:
                out.append(model(x).float().cpu())
    logits = torch.cat(out) if out else torch.empty(0, 0)
    kept = (torch.cat(feats) if feats else torch.empty(0, 0)) if features else None
    return SplitOutputs(logits, split.y.cpu(), kept)


def predict_all(
    model: nn.Module, splits: dict[str, Split], runtime: Runtime, features: bool = False
) -> dict[str, SplitOutputs]:
    extra = {"features": True} if features else {}  # the plain call as before when no metric reads features
    return {name: predict(model, split, runtime, **extra) for name, split in splits.items()}


def compute_metrics(outputs: dict[str, SplitOutputs], metrics: dict) -> dict[str, float]:
    """Every metric's per-model values from one model's outputs (the features only to a metric that reads
    them, as in the workers)."""
    values: dict[str, float] = {}
    for metric in metrics.values():
        values.update(metric.per_model(outputs if metric.needs_features else _without_features(outputs)))
    return values


def metric_info(metrics: dict) -> dict[str, dict]:
    """results.json `metric_info`: each column's description, in column order."""
    info = {name: desc for metric in metrics.values() for name, desc in metric.info().items()}
    return dict(sorted(info.items(), key=lambda item: item[1]["order"]))


class ValuesStore(Protocol):
    """Stored per-model values (e.g. of the cached reference models): `load` gives None when absent."""

    def load(self, who: str) -> dict[str, float] | None: ...

    def save(self, who: str, values: dict[str, float]) -> None: ...


class Evaluator:
    """Every model's per-model metric values, each model's started as soon as that model exists.

    With `workers` > 0, `submit(who, model)` predicts on the device at once and hands each metric's
    computation (mostly the attacks' classifier fits: single-threaded CPU work) to a pool of that many
    processes, so the reference models' values are computed while the method runs and the metrics of one
    model in parallel. With 0 workers everything runs in this process when `values` asks for it, as a
    serial evaluation does. Each metric reads only the outputs it is given: the values are the same.

    Penultimate features come from the same pass as the logits, and only when a metric needs them; a
    metric reads them only if it declares `needs_features`. Each model's outputs on the metrics'
    `compared_splits` are kept for `between_models`, also for a model whose values were stored.
    """

    def __init__(self, metrics: dict, splits: dict, runtime: Runtime, workers: int = 0, store=None):
        self.metrics, self.splits, self.runtime, self.store = metrics, splits, runtime, store
        self.workers = workers
        self.pool = _start_pool(workers) if workers > 0 else None
        self.pending: dict[str, Any] = {}
        compared, self.features = _feature_needs(metrics)
        self.compared = [name for name in splits if name in compared]
        self.kept: dict[str, dict[str, SplitOutputs]] = {}

    def submit(self, who: str, model: nn.Module) -> None:
        stored = self.store.load(who) if self.store is not None else None
        if stored is not None:
            self.pending[who] = stored
            if self.compared:  # a stored model's values need no pass, but the comparisons need its features
                subset = {name: self.splits[name] for name in self.compared}
                self.kept[who] = predict_all(model, subset, self.runtime, features=True)
        elif self.pool is None:
            self.kept[who] = {}
            self.pending[who] = partial(
                _predict_and_compute, model, self.splits, self.runtime, self.metrics, self.kept[who]
            )
        else:
            outputs = predict_all(model, self.splits, self.runtime, self.features)
            self.kept[who] = {name: outputs[name] for name in self.compared}
            self.pending[who] = [
                self.pool.submit(_metric_values, m, _as_arrays(outputs, m.needs_features))
                for m in self.metrics.values()
                if type(m).per_model is not Metric.per_model  # nothing to send to a metric with no per_model
            ]

    def values(self, who: str) -> dict[str, float]:
        """`who`'s values (waiting for them if need be), stored once computed."""
        pending = self.pending.pop(who)
        if isinstance(pending, dict):
            return pending
        if callable(pending):
            values = pending()
        else:
            values = {}
            for future in pending:  # in metric order, as the serial computation fills them
                values.update(future.result())
        if self.store is not None:
            self.store.save(who, values)
        return values

    def between_models(self) -> dict[str, dict[str, float]]:
        """Each submitted model's values from comparing its kept outputs with the other models' (after
        `values` of every model); the kept outputs are released."""
        kept = {who: outputs for who, outputs in self.kept.items() if outputs}
        out: dict[str, dict[str, float]] = {who: {} for who in kept}
        for metric in self.metrics.values():
            if metric.compared_splits:
                for who, values in metric.between_models(kept).items():
                    out[who].update(values)
        self.kept = {}
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _predict_and_compute(model, splits, runtime, metrics, keep: dict | None = None) -> dict[str, float]:
    """One model's values in this process; its outputs on the compared splits go into `keep`."""
    compared, features = _feature_needs(metrics)
    outputs = predict_all(model, splits, runtime, features)
    if keep is not None:
        keep.update({name: out for name, out in outputs.items() if name in compared})
    return compute_metrics(outputs, metrics)


def _feature_needs(metrics: dict) -> tuple[set[str], bool]:
    """(the splits some metric compares between models, whether the pass must give features)."""
    compared = {name for m in metrics.values() for name in m.compared_splits}
    return compared, bool(compared) or any(m.needs_features for m in metrics.values())


def _without_features(outputs: dict[str, SplitOutputs]) -> dict[str, SplitOutputs]:
    return {name: SplitOutputs(out.logits, out.labels) for name, out in outputs.items()}


def _as_arrays(outputs: dict[str, SplitOutputs], features: bool = False) -> dict[str, tuple]:
    """Outputs as numpy arrays: pickled by value to the workers (a tensor would travel as shared memory);
    the features only for a metric that reads them."""
    return {
        name: (
            out.logits.numpy(),
            out.labels.numpy(),
            out.features.numpy() if features and out.features is not None else None,
        )
        for name, out in outputs.items()
    }


def _metric_values(metric, arrays: dict[str, tuple]) -> dict[str, float]:
    """A worker's task: one metric's per-model values from one model's outputs."""
    outputs = {
        name: SplitOutputs(
            torch.from_numpy(x), torch.from_numpy(y), None if f is None else torch.from_numpy(f)
        )
        for name, (x, y, f) in arrays.items()
    }
    return metric.per_model(outputs)


def _quiet_worker() -> None:
    """Each worker computes on one thread (the pool is the parallelism) and imports the attacks' libraries
    before its first task."""
    from threadpoolctl import threadpool_limits

    import unlearnbench.metrics.lib.attacks  # noqa: F401  (scikit-learn)

    torch.set_num_threads(1)
    threadpool_limits(1)


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` fresh processes (spawned: a forked copy of a process holding CUDA or OpenMP threads
    can hang), started now so that their imports overlap the run's own work."""
    import multiprocessing

    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker
    )
    warm: list[Future] = [pool.submit(int) for _ in range(workers)]  # one spawn per task while none is idle
    del warm
    return pool


class ShadowContext:
    """What shadow-model metrics (LiRA, U-LiRA, the challenge score) and the models' attacks may use: the
    evaluated `models`, cached training and unlearning of extra models under the run's recipe, and prediction.

    Every model goes through the run's model cache (keyed by its training positions and seed), so
    shadow models are trained once and shared by all metrics, reruns and sweep jobs.
    """

    def __init__(
        self,
        trained: TrainedModels,
        unlearning: Unlearning,
        splits: Splits,
        models: dict[str, nn.Module | None],
        hook: TrainingHook | None,
        seed: int,
        batched: bool = False,
    ):
        self.trained, self.unlearning, self.splits, self.models = trained, unlearning, splits, models
        self.hook, self.seed, self.runtime = hook, seed, trained.runtime
        self.method = unlearning.method  # the run's method (e.g. the GPU check asks it about its fast path)
        self.hook_state = dict(hook.state) if hook is not None else {}  # e.g. Mnemonic codes
        # Train the missing models of one *_many request together, stacked (training/batched.py).
        self.batched = batched

    def predict(self, model: nn.Module, split: Split) -> SplitOutputs:
        return predict(model, split, self.runtime)

    def retrained_many(self, keeps: torch.Tensor, seeds: list[int]):
        """Yield `retrained(keeps[k], seeds[k])` for each k, one model at a time (the missing ones trained
        together first)."""
        splits = [with_forget_subset(self.splits, keep).retain for keep in keeps]
        for model, _ in self.trained.trained_many(splits, "retrain", seeds, batched=self.batched):
            yield model

    def retrained(self, keep: torch.Tensor, seed: int) -> nn.Module:
        """A model trained from scratch without the forget samples where `keep` is True."""
        return self.trained.retrained(with_forget_subset(self.splits, keep).retain, seed)

    def unlearned(
        self, keep: torch.Tensor, seed: int, original: nn.Module | None = None, hook_state: dict | None = None
    ) -> nn.Module:
        """The method applied to `original` (default: the run's) to forget the samples where `keep` is True."""
        shadow = with_forget_subset(self.splits, keep)
        base = self.models["original"] if original is None else original
        state = self.hook_state if hook_state is None else hook_state
        return self.unlearning(base, shadow, seed, state)[0]


def evaluate(
    models: dict[str, nn.Module | None],
    metrics: dict[str, Metric],
    shadows: ShadowContext,
    evaluator: Evaluator,
) -> dict[str, dict]:
    """Every metric's values per model (the reference models' submitted to `evaluator` already, so computed
    while the method ran); a diverged (None) unlearned model gets every metric as None."""
    if models["unlearned"] is not None:
        evaluator.submit("unlearned", models["unlearned"])
    values = {who: evaluator.values(who) for who, model in models.items() if model is not None}
    for who, extra in evaluator.between_models().items():  # e.g. representation similarity
        values[who].update(extra)
    for metric in metrics.values():
        if metric.needs_models:  # e.g. the relearning attack, on copies of the models
            for who, extra in metric.with_models(shadows).items():
                values[who].update(extra)
    if models["unlearned"] is not None:
        for metric in metrics.values():
            if metric.needs_shadows:
                values["unlearned"].update(metric.with_shadows(shadows))
    if "retrain" in values:  # values relative to Retrain, for the unlearned model and doing nothing
        for who in ("unlearned", "original"):
            for metric in metrics.values():
                if who in values:
                    values[who].update(metric.compare(values[who], values["retrain"]))
    if models["unlearned"] is None:
        values["unlearned"] = {k: None for k in values["original"]}
    return values
