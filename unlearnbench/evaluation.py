"""Evaluation: one un-augmented eval-mode pass per model and split, shared by every metric."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from unlearnbench.data.splits import Split
from unlearnbench.runtime import Runtime


@dataclass
class SplitOutputs:
    """Logits (float32, CPU) and labels of one split under one model; derived quantities cached."""

    logits: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits.double(), dim=1)


@torch.no_grad()
def predict(model: nn.Module, split: Split, runtime: Runtime) -> SplitOutputs:
    """Logits of `split` in eval mode, batched on the runtime device, inputs in [0, 1]."""
    model.eval()
    out = []
    bs = runtime.eval_batch_size
    for i in range(0, len(split), bs):
        x = split.x[i : i + bs].to(runtime.device, non_blocking=True).float().div_(255.0)
        if runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with runtime.autocast():
            out.append(model(x).float().cpu())
    logits = torch.cat(out) if out else torch.empty(0, 0)
    return SplitOutputs(logits, split.y.cpu())


def predict_all(model: nn.Module, splits: dict[str, Split], runtime: Runtime) -> dict[str, SplitOutputs]:
    return {name: predict(model, split, runtime) for name, split in splits.items()}


def compute_metrics(outputs: dict[str, SplitOutputs], metrics: dict) -> dict[str, float]:
    """Every metric's per-model values from one model's outputs."""
    values: dict[str, float] = {}
    for metric in metrics.values():
        values.update(metric.per_model(outputs))
    return values


def metric_info(metrics: dict) -> dict[str, dict]:
    """results.json `metric_info`: each column's description, in column order."""
    info = {name: desc for metric in metrics.values() for name, desc in metric.info().items()}
    return dict(sorted(info.items(), key=lambda item: item[1]["order"]))


class ShadowContext:
    """What shadow-model metrics (LiRA, U-LiRA, the challenge score) may use: cached training and
    unlearning of extra models under the run's recipe, and batched prediction.

    Every model goes through the run's model cache (keyed by its training positions and seed), so
    shadow models are trained once and shared by all metrics, reruns and sweep jobs.
    """

    def __init__(self, pipeline, method, method_name: str, splits, models: dict, hook):
        self.pipeline, self.method, self.method_name = pipeline, method, method_name
        self.splits, self.models, self.hook = splits, models, hook
        self.runtime = pipeline.runtime
        self.seed = int(pipeline.cfg.seed)
        self.hook_state = dict(hook.state) if hook is not None else {}  # e.g. Mnemonic codes
        # Train the missing models of one *_many request together, stacked (training/batched.py).
        self.batched = bool(pipeline.cfg.eval.get("batched_shadows", False))

    def predict(self, model: nn.Module, split: Split) -> SplitOutputs:
        return predict(model, split, self.runtime)

    def original(self, seed: int) -> tuple[nn.Module, dict]:
        """The original model (with the method's training hook, if any) trained with another seed."""
        hook = self.method.training_hook(seed, tuple(self.splits.train.x.shape[1:]), self.splits.num_classes)
        return self.pipeline.trained(self.splits.train, "original", hook, seed=seed, record=False)

    def original_many(self, seeds: list[int]):
        """Yield `original(seed)` for each seed, one model at a time (the missing ones trained together first)."""
        shape, n = tuple(self.splits.train.x.shape[1:]), self.splits.num_classes
        hooks = [self.method.training_hook(seed, shape, n) for seed in seeds]
        yield from self.pipeline.trained_many(
            [self.splits.train] * len(seeds), "original", seeds, hooks, batched=self.batched
        )

    def retrained_many(self, keeps: torch.Tensor, seeds: list[int]):
        """Yield `retrained(keeps[k], seeds[k])` for each k, one model at a time (the missing ones trained
        together first)."""
        from unlearnbench.data.splits import with_forget_subset

        splits = [with_forget_subset(self.splits, keep).retain for keep in keeps]
        for model, _ in self.pipeline.trained_many(splits, "retrain", seeds, batched=self.batched):
            yield model

    def retrained(self, keep: torch.Tensor, seed: int) -> nn.Module:
        """A model trained from scratch without the forget samples where `keep` is True."""
        from unlearnbench.data.splits import with_forget_subset

        shadow = with_forget_subset(self.splits, keep)
        return self.pipeline.trained(shadow.retain, "retrain", seed=seed, record=False)[0]

    def unlearned(
        self, keep: torch.Tensor, seed: int, original: nn.Module | None = None, hook_state: dict | None = None
    ) -> nn.Module:
        """The method applied to `original` (default: the run's) to forget the samples where `keep` is True."""
        from unlearnbench.data.splits import with_forget_subset

        shadow = with_forget_subset(self.splits, keep)
        base = self.models["original"] if original is None else original
        state = self.hook_state if hook_state is None else hook_state
        model, _ = self.pipeline.unlearn(self.method, base, shadow, seed, state, self.method_name)
        return model
