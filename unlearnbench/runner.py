"""`run(cfg) -> dict`: data -> original model -> unlearning -> evaluation. Usable without Hydra."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from unlearnbench import provenance
from unlearnbench.config import build, validate
from unlearnbench.data.batches import Augment
from unlearnbench.data.splits import Split, Splits, build_splits
from unlearnbench.evaluation import Evaluator, ShadowContext, metric_info
from unlearnbench.files import atomic_write_text
from unlearnbench.loggers import close_logger, log_results, make_logger
from unlearnbench.methods.base import GrantedSplits, TrainingHook, UnlearnContext
from unlearnbench.methods.common import DivergedError, check_weights_finite
from unlearnbench.runtime import Runtime, apply_determinism, apply_threads
from unlearnbench.training.batched import fit_many, num_batches, why_not_batched
from unlearnbench.training.cache import ModelCache, spec_hash
from unlearnbench.training.recipe import RESULT_AFFECTING_TRAINER_KEYS, seed_everything

log = logging.getLogger(__name__)

CACHE_VERSION = 2
# Loader arguments that say where data is, not what it is: left out of cache keys.
LOCATION_KEYS = ("root", "download", "archive", "cache_dir")


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def model_spec(cfg: DictConfig, split: Split, hook: TrainingHook | None, seed: int) -> dict:
    """Everything that determines a model trained from scratch on `split` (its cache key)."""
    ds = _container(cfg.dataset)
    source = {k: v for k, v in ds["source"].items() if k not in LOCATION_KEYS}
    trainer = _container(cfg.trainer)
    dataset = {
        "name": ds["name"],
        "source": source,
        "val_fraction": ds["val_fraction"],
        "split_seed": ds["split_seed"],
        "augment": ds["augment"],
        "train_subset": ds.get("train_subset"),
        "test_subset": ds.get("test_subset"),
    }
    if (
        ds.get("val_source", "train") != "train"
    ):  # only when set, so the keys of existing models stay the same
        dataset["val_source"] = ds["val_source"]
    return {
        "version": CACHE_VERSION,
        "code": provenance.code_version(provenance.TRAINING_CODE),  # code that trains differently misses
        "dataset": dataset,
        "model": {k: v for k, v in _container(cfg.model).items() if k != "name"},
        "recipe": _container(cfg.recipe),
        "seed": int(seed),
        "train_split": {"name": split.name, "size": len(split), "positions": split.fingerprint()},
        "trainer": {k: trainer.get(k) for k in RESULT_AFFECTING_TRAINER_KEYS},
        "limit_batches": cfg.runtime.get("limit_batches"),
        "hook": hook.spec if hook is not None else None,
    }


class Pipeline:
    """The shared state of one run: config, runtime, splits, cache, logger."""

    def __init__(self, cfg: DictConfig, splits: Splits, runtime: Runtime, logger):
        self.cfg, self.splits, self.runtime, self.logger = cfg, splits, runtime, logger
        self.cache = ModelCache(cfg.paths.cache_dir)
        self.augment = Augment(**_container(cfg.dataset.augment))
        self.cache_info: dict[str, dict] = {}
        self.method_log_step = 0

    def new_model(self) -> torch.nn.Module:
        return build(self.cfg.model)

    def batches(
        self, split: Split, batch_size: int, shuffle: bool, augment: Augment | None, seed: int, hook=None
    ):
        return self.runtime.batches(
            split.x, split.y, batch_size=batch_size, shuffle=shuffle, augment=augment, seed=seed, hook=hook
        )

    def fresh(self, split: Split, seed: int, hook: TrainingHook | None):
        """A model initialised from `seed` and its training batches on `split` (order, augmentation and the
        training hook's draws from `seed` too): where every model trained from scratch starts."""
        seed_everything(seed)
        model = self.new_model()
        batches = self.batches(
            split,
            int(self.cfg.recipe.batch_size),
            True,
            self.augment,
            seed,
            hook.apply if hook is not None else None,
        )
        return model, batches

    def trained(
        self,
        split: Split,
        stage: str,
        hook: TrainingHook | None = None,
        seed: int | None = None,
        record: bool = True,
    ) -> tuple[torch.nn.Module, dict]:
        """A model trained from scratch on `split` with the dataset's recipe: from cache, or trained now.

        `seed` (default: the run's) seeds initialisation, batches and augmentation; shadow models use
        their own. `record=False` keeps the entry out of results.json's `cache` field.
        """
        cfg = self.cfg
        seed = int(cfg.seed) if seed is None else int(seed)
        spec = model_spec(cfg, split, hook, seed)
        partial = self.cache.root / "partial" / f"{stage}-{spec_hash(spec)}"

        def train() -> dict:
            model, train_batches = self.fresh(split, seed, hook)
            if self.runtime.channels_last:
                model = model.to(memory_format=torch.channels_last)
            recipe = _container(cfg.recipe)
            val_batches = self.batches(self.splits.val, self.runtime.eval_batch_size, False, None, 0)
            log.info(
                "training %s model (%s, %d samples, %d epochs, seed %d) on %s",
                stage,
                cfg.model.name,
                len(split),
                recipe["epochs"],
                seed,
                self.runtime.device,
            )
            from unlearnbench.training.lightning import (
                fit,  # Lightning is imported only when something trains
            )

            trainer = {**_container(cfg.trainer), "enable_progress_bar": self.runtime.progress}
            steps = num_batches(len(train_batches), trainer.get("limit_train_batches")) * recipe["epochs"]
            # Compiling changes float rounding only, as stacking does: not part of the cache key.
            compile_options = self.runtime.compile_options(steps)
            every = self.runtime.checkpoint_every(recipe["epochs"])
            timings: dict = {}
            _sync(self.runtime.device)
            start = time.perf_counter()
            fit(
                model,
                train_batches,
                val_batches if len(self.splits.val) else None,
                recipe,
                trainer,
                logger=self.logger if record else None,
                stage=stage,
                root_dir=cfg.paths.output_dir,
                checkpoint_dir=partial if every is not None else None,
                checkpoint_every=every or 1,
                compile=compile_options,
                timings=timings,
            )
            _sync(self.runtime.device)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            # The training cost travels with the model, so a cached Retrain still reports what it cost.
            return {
                "state_dict": state,
                "hook_state": dict(hook.state) if hook is not None else {},
                "train_seconds": time.perf_counter() - start,
                "compile_seconds": timings["compile_s"],
                "compile": compile_options,
                "train_device": str(self.runtime.device),
            }

        start = time.perf_counter()
        payload, info = self.cache.get_or_create(stage, spec, train)
        shutil.rmtree(partial, ignore_errors=True)
        model = self.new_model()
        model.load_state_dict(payload["state_dict"])
        model = self.runtime.prepare(model).eval()
        if record:
            self.cache_info[stage] = {
                "key": info.key,
                "hit": info.hit,
                "path": info.path,
                "train_seconds": payload.get("train_seconds"),
                "compile_seconds": payload.get("compile_seconds"),
                "compile": payload.get("compile"),
                "train_device": payload.get("train_device"),
                "seconds_this_run": time.perf_counter() - start,  # the load time on a hit
            }
        return model, payload.get("hook_state", {})

    def trained_many(
        self,
        splits: list[Split],
        stage: str,
        seeds: list[int],
        hooks: list | None = None,
        batched: bool = True,
    ):
        """Yield `trained(splits[k], stage, hooks[k], seeds[k], record=False)` for each k, one at a time.

        With `batched`, the models missing from the cache are first trained together, stacked
        (training/batched.py), one group per training-set size, and written to the same cache entries
        that `trained` reads and writes; then every model is loaded from there. A model that cannot be
        batched is trained one at a time (logged once).
        """
        hooks = list(hooks) if hooks is not None else [None] * len(splits)
        if batched and self._batch_blocker is None:
            groups: dict[int, list[int]] = {}
            for k, split in enumerate(splits):
                groups.setdefault(len(split), []).append(k)
            for group in groups.values():
                self._train_missing(stage, [(splits[k], seeds[k], hooks[k]) for k in group])
        for split, seed, hook in zip(splits, seeds, hooks, strict=True):
            yield self.trained(split, stage, hook, seed=seed, record=False)

    @cached_property
    def _batch_blocker(self) -> str | None:
        """Why this run's models cannot be trained in stacked groups (None: they can); logged once."""
        with torch.device("meta"):  # the architecture only: no weights, no random draws
            probe = self.new_model()
        reason = why_not_batched(
            probe, _container(self.cfg.trainer), self.runtime.device, _container(self.cfg.recipe)
        )
        if reason is None and not self.runtime.data_on_device:
            reason = "the data is streamed from host memory (runtime.data_on_device=false)"
        if reason is not None:
            log.info("models are trained one at a time, not batched: %s", reason)
        return reason

    def _train_missing(self, stage: str, jobs: list[tuple]) -> None:
        """Train the models `jobs` = [(split, seed, hook)] missing from the cache as one stacked group
        and write them to the cache (the entries `trained` reads)."""
        specs = [model_spec(self.cfg, split, hook, seed) for split, seed, hook in jobs]
        recipe = _container(self.cfg.recipe)

        def fit_group(todo: list[int]) -> list[dict]:
            splits, seeds, hooks = zip(*(jobs[i] for i in todo))
            models, streams = [], []
            for split, seed, hook in zip(splits, seeds, hooks):
                model, batches = self.fresh(split, seed, hook)  # exactly as `trained` starts each model
                models.append(model.to(self.runtime.device))
                streams.append(batches)
            log.info(
                "training %d %s models together (%s, %d samples each, %d epochs, seeds %s) on %s",
                len(models),
                stage,
                self.cfg.model.name,
                len(splits[0]),
                recipe["epochs"],
                ", ".join(map(str, seeds)),
                self.runtime.device,
            )
            checkpoints = self.cache.root / "partial" / f"{stage}-group-{spec_hash([specs[i] for i in todo])}"
            _sync(self.runtime.device)
            start = time.perf_counter()
            every = self.runtime.checkpoint_every(recipe["epochs"])
            states = fit_many(
                models,
                streams,
                recipe,
                _container(self.cfg.trainer),
                self.runtime.autocast,
                checkpoints if every is not None else None,
                checkpoint_every=every or 1,
            )
            _sync(self.runtime.device)
            each = (time.perf_counter() - start) / len(states)  # the group's cost, shared equally
            shutil.rmtree(checkpoints, ignore_errors=True)
            return [
                {
                    "state_dict": state,
                    "hook_state": dict(hook.state) if hook is not None else {},
                    "train_seconds": each,
                    "train_device": str(self.runtime.device),
                }
                for state, hook in zip(states, hooks)
            ]

        self.cache.create_many(stage, specs, fit_group)

    def context(self, splits: Splits, seed: int, hook_state: dict) -> UnlearnContext:
        return UnlearnContext(
            runtime=self.runtime,
            seed=seed,
            num_classes=splits.num_classes,
            forget_ratio=len(splits.forget) / len(splits.train),
            forget_classes=splits.forget_classes,
            augment=self.augment,
            hook_state=hook_state,
            train_from_scratch=lambda split: self.trained(
                split, "retrain", seed=seed, record=split is self.splits.retain
            )[0],
            log=self.log_method_values,
        )

    def _reference_values_path(self, who: str) -> Path | None:
        """Where the per-model metric values of a cached reference model (original, Retrain) are kept: one file
        per model, splits, metric config and precision (every method run of a seed shares them); None for any
        other model."""
        info = self.cache_info.get(who)
        if who not in ("original", "retrain") or info is None:
            return None
        spec = {
            "model": info["key"],
            "code": provenance.code_version(provenance.METRIC_CODE),
            "metrics": _container(self.cfg.eval.metrics),
            "splits": {name: split.fingerprint() for name, split in self.splits.eval_splits().items()},
            "device": self.runtime.device.type,
            "precision": self.runtime.precision,
        }
        return self.cache.root / "metrics" / f"{who}-{spec_hash(spec)}.json"

    def load(self, who: str) -> dict[str, float] | None:
        """The stored values of reference model `who`, or None (evaluation.ValuesStore): also None, with a
        warning, when the file does not match the checksum stored with it (edited or damaged: recomputed)."""
        path = self._reference_values_path(who)
        try:
            stored = json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            return None
        if stored is None:
            return None
        values = stored.get("values") if isinstance(stored, dict) else None
        if not isinstance(values, dict) or stored.get("sha256") != _values_checksum(values):
            aside = path.with_name(f"{path.stem}.corrupt-{int(time.time())}.json")
            os.replace(path, aside)  # kept for a look, as a damaged model is, not overwritten
            log.warning(
                "%s: cached %s metric values fail their checksum; moved aside to %s, recomputing",
                path,
                who,
                aside,
            )
            return None
        return values

    def save(self, who: str, values: dict[str, float]) -> None:
        path = self._reference_values_path(who)
        if path is not None:
            atomic_write_text(path, json.dumps({"values": values, "sha256": _values_checksum(values)}))

    def log_method_values(self, values: dict[str, Any]) -> None:
        """A method's diagnostics (`ctx.log`) go to the run's logger (CSV, W&B), one step per call."""
        if self.logger is None:
            return
        numbers = {
            f"method/{k}": float(v)
            for k, v in values.items()
            if isinstance(v, (int, float, bool)) or (torch.is_tensor(v) and v.numel() == 1)
        }
        if numbers:
            self.logger.log_metrics(numbers, step=self.method_log_step)
            self.method_log_step += 1

    def unlearn(
        self, method, original: torch.nn.Module, splits: Splits, seed: int, hook_state: dict, name: str
    ) -> tuple[torch.nn.Module, float]:
        """Apply `method` to a private copy of `original`, granting only its declared splits; return (model, seconds)."""
        model = copy.deepcopy(original)
        granted = GrantedSplits(splits, method.needs, name)
        ctx = self.context(splits, seed, hook_state)

        _sync(self.runtime.device)
        start = time.perf_counter()
        model = method.unlearn(model, granted, ctx)
        _sync(self.runtime.device)
        return model, time.perf_counter() - start


def _values_checksum(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    runtime = Runtime.from_cfg(_container(cfg.trainer), _container(cfg.runtime), data_bytes)
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


def run(
    cfg: DictConfig, job_hash: str | None = None, shadow_context: type = ShadowContext, progress: bool = False
) -> dict:
    """Run one experiment and return its results (also written to `<output_dir>/results.json`).

    Prints nothing: progress goes to `logging` (a line per epoch), or with `progress` (the command line) to
    bars where the output is a terminal. `unlearnbench.compose` builds `cfg` without Hydra.
    `shadow_context` builds what shadow-model metrics use (a subclass can instrument it).
    """
    wall = time.perf_counter()
    cfg = copy.deepcopy(cfg)
    scenario, method = validate(cfg)
    out_dir = Path(cfg.paths.output_dir)
    times: dict[str, float | None] = {}

    seed_everything(int(cfg.seed))
    raw, splits, runtime = prepare_data(cfg, scenario)
    runtime.progress = runtime.progress and progress
    warn_tiny_splits(splits, retrain=bool(cfg.eval.retrain))

    metrics_objs = {name: build(node) for name, node in cfg.eval.metrics.items()}
    logger = make_logger(cfg.logger)
    status, evaluator = "failed", None
    try:
        pipe = Pipeline(cfg, splits, runtime, logger)
        workers = runtime.evaluation_workers(3 * len(metrics_objs))
        evaluator = Evaluator(metrics_objs, splits.eval_splits(), runtime, workers, store=pipe)
        hook = method.training_hook(int(cfg.seed), tuple(raw.train_x.shape[1:]), splits.num_classes)
        original, hook_state = pipe.trained(splits.train, "original", hook)
        evaluator.submit("original", original)  # with eval workers, computed while the rest runs
        retrain = pipe.trained(splits.retain, "retrain")[0] if cfg.eval.retrain else None
        if retrain is not None:
            evaluator.submit("retrain", retrain)
        for (
            stage,
            info,
        ) in pipe.cache_info.items():  # the models' training cost, also when loaded from the cache
            times[stage] = info["train_seconds"]
            if info.get("compile_seconds"):
                times[f"{stage}_compile"] = info["compile_seconds"]

        diverged = None
        try:
            unlearned, times["unlearn"] = pipe.unlearn(
                method, original, splits, int(cfg.seed), hook_state, str(cfg.method.name)
            )
            check_weights_finite(unlearned, f"method {cfg.method.name}")
        except DivergedError as err:
            # The run still completes: metrics null, status "diverged", so sweep siblings and reports go on.
            diverged, unlearned, times["unlearn"] = str(err), None, None
            log.warning("method %s diverged: %s", cfg.method.name, err)

        start = time.perf_counter()  # evaluation's share of the run: from here, what the run still waits for
        models = {"unlearned": unlearned, "original": original, "retrain": retrain}
        shadows = shadow_context(pipe, method, str(cfg.method.name), splits, models, hook)
        values = evaluate_models(models, metrics_objs, shadows, evaluator)
        times["eval"] = time.perf_counter() - start
        times["total"] = time.perf_counter() - wall

        results = assemble_results(
            cfg, scenario, splits, values, metric_info(metrics_objs), times, pipe, runtime, diverged
        )
        results["job_hash"] = job_hash
        # An original trained under a method's hook (Mnemonic's codes) is another model than the plain one.
        results["original"]["trained_with"] = str(cfg.method.name) if hook is not None else None
        results["eval_workers"] = workers
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "indices.json", json.dumps(splits.indices()))
        atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2))
        log_results(logger, cfg, results)
        status = "success"
        return results
    finally:
        if evaluator is not None:
            evaluator.close()
        close_logger(logger, status)


def evaluate_models(
    models: dict, metrics_objs: dict, shadows: ShadowContext, evaluator: Evaluator
) -> dict[str, dict]:
    """Metric values per model (the reference models' submitted to `evaluator` already); a diverged (None)
    unlearned model gets every metric as None."""
    if models["unlearned"] is not None:
        evaluator.submit("unlearned", models["unlearned"])
    values = {who: evaluator.values(who) for who, model in models.items() if model is not None}
    for who, extra in evaluator.between_models().items():  # e.g. representation similarity
        values[who].update(extra)
    for metric in metrics_objs.values():
        if metric.needs_models:  # e.g. the relearning attack, on copies of the models
            for who, extra in metric.with_models(shadows).items():
                values[who].update(extra)
    if models["unlearned"] is not None:
        for metric in metrics_objs.values():
            if metric.needs_shadows:
                values["unlearned"].update(metric.with_shadows(shadows))
    if "retrain" in values:  # values relative to Retrain, for the unlearned model and doing nothing
        for who in ("unlearned", "original"):
            for metric in metrics_objs.values():
                if who in values:
                    values[who].update(metric.compare(values[who], values["retrain"]))
    if models["unlearned"] is None:
        values["unlearned"] = {k: None for k in values["original"]}
    return values


def assemble_results(
    cfg, scenario, splits, values, info, times, pipe, runtime, diverged: str | None = None
) -> dict:
    unlearned = values["unlearned"]
    retrain = values.get("retrain")
    forget = dict(scenario.describe())
    forget["classes"] = splits.forget_classes  # every class-wise scenario names what it removed
    forget["size"] = len(splits.forget)
    forget["fraction_of_train"] = len(splits.forget) / len(splits.train)
    gap = {
        k: unlearned[k] - retrain[k]
        for k in unlearned
        if retrain is not None
        and k in retrain
        and unlearned[k] is not None
        and retrain[k] is not None
        and info.get(k, {}).get("vs_retrain")
    }
    return {
        "status": "diverged" if diverged else "ok",
        "reason": diverged,
        "method": str(cfg.method.name),
        "method_preset": cfg.method.get("preset"),  # conf/preset/<method>/<dataset>.yaml, when one applied
        "dataset": str(cfg.dataset.name),
        "model": str(cfg.model.name),
        "seed": int(cfg.seed),
        "forget": forget,
        "sizes": {name: len(s) for name, s in splits.eval_splits().items()},
        "metrics": unlearned,
        "original": {"metrics": values["original"]},
        "retrain": {"metrics": retrain} if retrain is not None else None,
        "gap": gap,
        "metric_info": info,
        "time_s": times,
        "cache": pipe.cache_info,
        "env": provenance.environment(runtime),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
