"""`run(cfg) -> dict`: data -> original model -> unlearning -> evaluation -> results. Usable without Hydra."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unlearnbench.config.core import build, plain, validate
from unlearnbench.data.splits import Splits, build_splits
from unlearnbench.evaluation import Evaluator, ShadowContext, evaluate, metric_info
from unlearnbench.loggers import close_logger, log_results, make_logger
from unlearnbench.methods.lib.common import DivergedError, check_weights_finite
from unlearnbench.results import assemble_results, stage_times, write_results
from unlearnbench.runtime import Runtime, apply_determinism, apply_threads
from unlearnbench.training.models import TrainedModels
from unlearnbench.training.recipe import seed_everything
from unlearnbench.training.reference_values import ReferenceValues
from unlearnbench.unlearning import MethodLog, Unlearning

log = logging.getLogger(__name__)


def prepare_data(cfg: DictConfig, scenario) -> tuple[Any, Splits, Runtime]:
    """(dataset, splits, runtime) as a run uses them: the splits on the device when the runtime keeps data there."""
    raw = build(cfg.dataset.source)
    splits = build_splits(
        raw,
        scenario,
        float(cfg.dataset.val_fraction),
        int(cfg.dataset.split_seed),
        cfg.dataset.get("train_subset"),
        cfg.dataset.get("test_subset"),
        str(cfg.dataset.get("val_source", "train")),
    )
    data_bytes = raw.train_x.numel() + raw.test_x.numel()
    runtime = Runtime.from_cfg(plain(cfg.trainer), plain(cfg.runtime), data_bytes)
    apply_determinism(cfg.trainer.get("deterministic", False))
    apply_threads(cfg.runtime.get("threads"))
    if runtime.data_on_device:
        for name in ("train", "forget", "retain", "val", "test", "test_forget"):
            if getattr(splits, name) is not None:
                setattr(splits, name, getattr(splits, name).to(runtime.device))
    return raw, splits, runtime


# Fewer samples than this in a split make its accuracy steps of 10 points or more: said, not silently used.
TINY_SPLIT = 10


def warn_tiny_splits(splits: Splits, retrain: bool) -> None:
    """A warning per split too small for its metrics (or for Retrain, trained on the retain set) to mean much:
    D_f and D_r always, the other evaluated splits when they are not simply absent."""
    sizes = {name: len(split) for name, split in splits.eval_splits().items()}
    sizes |= {"forget": len(splits.forget), "retain": len(splits.retain)}
    for name, n in sizes.items():
        if n < TINY_SPLIT and (n > 0 or name in ("forget", "retain")):
            what = " (Retrain's training set: no reference)" if name == "retain" and retrain else ""
            log.warning("split %s has only %d samples%s: its metrics are noise", name, n, what)


def unlearn_or_diverge(unlearning: Unlearning, original, splits: Splits, seed: int, hook_state: dict):
    """(unlearned model, seconds, None), or (None, None, why) when the method diverged: the run still
    completes, its metrics null and its status "diverged", so sweep siblings and reports go on."""
    try:
        model, seconds = unlearning(original, splits, seed, hook_state)
        check_weights_finite(model, f"method {unlearning.name}")
    except DivergedError as err:
        log.warning("method %s diverged: %s", unlearning.name, err)
        return None, None, str(err)
    return model, seconds, None


def start_evaluation(metrics: dict, trained: TrainedModels, metrics_cfg: dict) -> Evaluator:
    """The run's evaluator: its attack fits in worker processes as the runtime allows, the reference models'
    values stored beside the model cache."""
    runtime = trained.runtime
    store = ReferenceValues(trained.cache.root, trained.cache_info, metrics_cfg, trained.splits, runtime)
    workers = runtime.evaluation_workers(3 * len(metrics))
    return Evaluator(metrics, trained.splits.eval_splits(), runtime, workers, store=store)


def run(cfg: DictConfig, job_hash: str | None = None, progress: bool = False) -> dict:
    """Run one experiment and return its results (also written to `<output_dir>/results.json`).

    Prints nothing: progress goes to `logging` (a line per epoch), or with `progress` (the command line) to
    bars where the output is a terminal. `unlearnbench.compose` builds `cfg` without Hydra.
    """
    wall = time.perf_counter()
    cfg = copy.deepcopy(cfg)
    scenario, method = validate(cfg)
    # Built once, here: each metric's constructor checks its options, before any work.
    metrics = {name: build(node) for name, node in cfg.eval.metrics.items()}
    seed = int(cfg.seed)
    seed_everything(seed)
    raw, splits, runtime = prepare_data(cfg, scenario)
    runtime.progress = runtime.progress and progress
    warn_tiny_splits(splits, retrain=bool(cfg.eval.retrain))

    logger = make_logger(cfg.logger)
    status, evaluator = "failed", None
    try:
        trained = TrainedModels(cfg, splits, runtime, logger)
        evaluator = start_evaluation(metrics, trained, plain(cfg.eval.metrics))
        hook = method.training_hook(seed, tuple(raw.train_x.shape[1:]), splits.num_classes)
        original, hook_state = trained.trained(splits.train, "original", hook)
        evaluator.submit("original", original)  # with eval workers, computed while the rest runs
        retrain = trained.trained(splits.retain, "retrain")[0] if cfg.eval.retrain else None
        if retrain is not None:
            evaluator.submit("retrain", retrain)

        name = str(cfg.method.name)
        unlearning = Unlearning(method, name, runtime, trained.augment, trained.retrained, MethodLog(logger))
        unlearned, unlearn_s, diverged = unlearn_or_diverge(unlearning, original, splits, seed, hook_state)
        times = {**stage_times(trained.cache_info), "unlearn": unlearn_s}

        start = time.perf_counter()  # evaluation's share of the run: from here, what the run still waits for
        models = {"unlearned": unlearned, "original": original, "retrain": retrain}
        batched = bool(cfg.eval.get("batched_shadows", False))
        shadows = ShadowContext(trained, unlearning, splits, models, hook, seed, batched)
        values = evaluate(models, metrics, shadows, evaluator)
        times["eval"] = time.perf_counter() - start
        times["total"] = time.perf_counter() - wall

        info = metric_info(metrics)
        results = assemble_results(
            cfg, scenario, splits, values, info, times, trained.cache_info, runtime, diverged
        )
        results["job_hash"] = job_hash
        # An original trained under a method's hook (Mnemonic's codes) is another model than the plain one.
        results["original"]["trained_with"] = name if hook is not None else None
        results["eval_workers"] = evaluator.workers
        write_results(Path(cfg.paths.output_dir), results, splits)
        log_results(logger, cfg, results)
        status = "success"
        return results
    finally:
        if evaluator is not None:
            evaluator.close()
        close_logger(logger, status)
