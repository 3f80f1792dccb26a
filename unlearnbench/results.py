"""results.json: what a run reports, assembled from its parts, and where it is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from unlearnbench import provenance
from unlearnbench.data.splits import Splits
from unlearnbench.files import atomic_write_text
from unlearnbench.runtime import Runtime


def stage_times(cache_info: dict[str, dict]) -> dict[str, Any]:
    """`time_s` of the trained models, also when loaded from the cache: `<stage>` and `<stage>_compile`."""
    times: dict[str, Any] = {}
    for stage, info in cache_info.items():
        times[stage] = info["train_seconds"]
        if info.get("compile_seconds"):
            times[f"{stage}_compile"] = info["compile_seconds"]
    return times


def forget_description(scenario, splits: Splits) -> dict:
    """results.json `forget`: the scenario, the classes it removed (class-wise), and the forget set's size."""
    forget = dict(scenario.describe())
    forget["classes"] = splits.forget_classes
    forget["size"] = len(splits.forget)
    forget["fraction_of_train"] = len(splits.forget) / len(splits.train)
    return forget


def gaps(unlearned: dict, retrain: dict | None, info: dict[str, dict]) -> dict[str, float]:
    """unlearned - Retrain for each value shown against Retrain, where both exist."""
    if retrain is None:
        return {}
    return {
        k: unlearned[k] - retrain[k]
        for k in unlearned
        if k in retrain
        and unlearned[k] is not None
        and retrain[k] is not None
        and info.get(k, {}).get("vs_retrain")
    }


def assemble_results(
    cfg: DictConfig,
    scenario,
    splits: Splits,
    values: dict[str, dict],
    info: dict[str, dict],
    times: dict[str, float | None],
    cache_info: dict[str, dict],
    runtime: Runtime,
    diverged: str | None = None,
) -> dict:
    """The results dict of one run (its keys are results.json's; see README)."""
    unlearned, retrain = values["unlearned"], values.get("retrain")
    return {
        "status": "diverged" if diverged else "ok",
        "reason": diverged,
        "method": str(cfg.method.name),
        "method_preset": cfg.method.get("preset"),  # conf/preset/<method>/<dataset>.yaml, when one applied
        "dataset": str(cfg.dataset.name),
        "model": str(cfg.model.name),
        "seed": int(cfg.seed),
        "forget": forget_description(scenario, splits),
        "sizes": {name: len(s) for name, s in splits.eval_splits().items()},
        "metrics": unlearned,
        "original": {"metrics": values["original"]},
        "retrain": {"metrics": retrain} if retrain is not None else None,
        "gap": gaps(unlearned, retrain, info),
        "metric_info": info,
        "time_s": times,
        "cache": cache_info,
        "env": provenance.environment(runtime),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def write_results(out_dir: Path, results: dict, splits: Splits) -> None:
    """`results.json` and `indices.json` (every split's dataset positions) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "indices.json", json.dumps(splits.indices()))
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2))
