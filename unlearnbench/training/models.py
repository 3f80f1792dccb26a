"""Models trained from scratch with the dataset's recipe (the original, Retrain, shadow models), read from or
written to the content-addressed model cache (training/cache.py): `TrainedModels.trained` gives one,
`trained_many` a family, whose missing members are trained together, stacked (training/batched.py)."""

from __future__ import annotations

import logging
import shutil
import time
from functools import cached_property, partial
from pathlib import Path

import torch
from omegaconf import DictConfig

from unlearnbench import provenance
from unlearnbench.config.core import build, plain
from unlearnbench.data.batches import Augment
from unlearnbench.data.splits import Split, Splits
from unlearnbench.methods.base import TrainingHook
from unlearnbench.runtime import Runtime, sync
from unlearnbench.training.batched import fit_many, num_batches, why_not_batched
from unlearnbench.training.cache import ModelCache, spec_hash
from unlearnbench.training.recipe import RESULT_AFFECTING_TRAINER_KEYS, seed_everything

log = logging.getLogger(__name__)

CACHE_VERSION = 2
# Loader arguments that say where data is, not what it is: left out of cache keys.
LOCATION_KEYS = ("root", "download", "archive", "cache_dir")


def model_spec(cfg: DictConfig, split: Split, hook: TrainingHook | None, seed: int) -> dict:
    """Everything that determines a model trained from scratch on `split` (its cache key)."""
    ds = plain(cfg.dataset)
    source = {k: v for k, v in ds["source"].items() if k not in LOCATION_KEYS}
    trainer = plain(cfg.trainer)
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
        "model": {k: v for k, v in plain(cfg.model).items() if k != "name"},
        "recipe": plain(cfg.recipe),
        "seed": int(seed),
        "train_split": {"name": split.name, "size": len(split), "positions": split.fingerprint()},
        "trainer": {k: trainer.get(k) for k in RESULT_AFFECTING_TRAINER_KEYS},
        "limit_batches": cfg.runtime.get("limit_batches"),
        "hook": hook.spec if hook is not None else None,
    }


def _payload(state: dict, hook: TrainingHook | None, seconds: float, device: torch.device, **extra) -> dict:
    """A cache entry: the weights, the hook's state, and the training cost (which travels with the model, so
    a cached Retrain still reports what it cost)."""
    return {
        "state_dict": state,
        "hook_state": dict(hook.state) if hook is not None else {},
        "train_seconds": seconds,
        **extra,
        "train_device": str(device),
    }


class TrainedModels:
    """Every model of a run trained from scratch, under the run's config, splits, runtime and logger.

    `cache_info` holds what results.json's `cache` field reports: per recorded stage, its cache key, whether
    it was a hit, and the training cost.
    """

    def __init__(self, cfg: DictConfig, splits: Splits, runtime: Runtime, logger=None):
        self.cfg, self.splits, self.runtime, self.logger = cfg, splits, runtime, logger
        self.cache = ModelCache(cfg.paths.cache_dir)
        self.augment = Augment(**plain(cfg.dataset.augment))
        self.cache_info: dict[str, dict] = {}

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
        """(model, hook state): a model trained from scratch on `split` with the dataset's recipe, from the
        cache or trained now.

        `seed` (default: the run's) seeds initialisation, batches and augmentation; shadow models use
        their own. `record=False` keeps the entry out of results.json's `cache` field.
        """
        seed = int(self.cfg.seed) if seed is None else int(seed)
        spec = model_spec(self.cfg, split, hook, seed)
        partial_dir = self.cache.root / "partial" / f"{stage}-{spec_hash(spec)}"
        start = time.perf_counter()
        train = partial(self._train_one, split, stage, hook, seed, record, partial_dir)
        payload, info = self.cache.get_or_create(stage, spec, train)
        shutil.rmtree(partial_dir, ignore_errors=True)
        model = self.new_model()
        model.load_state_dict(payload["state_dict"])
        model = self.runtime.prepare(model).eval()
        if record:
            self.cache_info[stage] = {
                "key": info.key,
                "hit": info.hit,
                "path": info.path,
                **{
                    k: payload.get(k) for k in ("train_seconds", "compile_seconds", "compile", "train_device")
                },
                "seconds_this_run": time.perf_counter() - start,  # the load time on a hit
            }
        return model, payload.get("hook_state", {})

    def retrained(self, split: Split, seed: int) -> torch.nn.Module:
        """A model trained from scratch on `split` as Retrain is (a method's `ctx.train_from_scratch`); recorded
        in results.json as the run's Retrain when `split` is the run's retain set."""
        return self.trained(split, "retrain", seed=seed, record=split is self.splits.retain)[0]

    def _train_one(
        self, split: Split, stage: str, hook, seed: int, record: bool, checkpoint_dir: Path
    ) -> dict:
        """Train one model with Lightning (resumable from `checkpoint_dir`); its cache entry."""
        from unlearnbench.training.lightning import fit  # Lightning is imported only when something trains

        model, train_batches = self.fresh(split, seed, hook)
        if self.runtime.channels_last:
            model = model.to(memory_format=torch.channels_last)
        recipe = plain(self.cfg.recipe)
        val = self.batches(self.splits.val, self.runtime.eval_batch_size, False, None, 0)
        what = f"{self.cfg.model.name}, {len(split)} samples, {recipe['epochs']} epochs, seed {seed}"
        log.info("training %s model (%s) on %s", stage, what, self.runtime.device)
        trainer = {**plain(self.cfg.trainer), "enable_progress_bar": self.runtime.progress}
        steps = num_batches(len(train_batches), trainer.get("limit_train_batches")) * recipe["epochs"]
        # Compiling changes float rounding only, as stacking does: not part of the cache key.
        compile_options = self.runtime.compile_options(steps)
        every = self.runtime.checkpoint_every(recipe["epochs"])
        timings: dict = {}
        sync(self.runtime.device)
        start = time.perf_counter()
        fit(
            model,
            train_batches,
            val if len(self.splits.val) else None,
            recipe,
            trainer,
            logger=self.logger if record else None,
            stage=stage,
            root_dir=self.cfg.paths.output_dir,
            checkpoint_dir=checkpoint_dir if every is not None else None,
            checkpoint_every=every or 1,
            compile=compile_options,
            timings=timings,
        )
        sync(self.runtime.device)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        seconds = time.perf_counter() - start
        extra = {"compile_seconds": timings["compile_s"], "compile": compile_options}
        return _payload(state, hook, seconds, self.runtime.device, **extra)

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
        reason = why_not_batched(probe, plain(self.cfg.trainer), self.runtime.device, plain(self.cfg.recipe))
        if reason is None and not self.runtime.data_on_device:
            reason = "the data is streamed from host memory (runtime.data_on_device=false)"
        if reason is not None:
            log.info("models are trained one at a time, not batched: %s", reason)
        return reason

    def _train_missing(self, stage: str, jobs: list[tuple]) -> None:
        """Train the models `jobs` = [(split, seed, hook)] missing from the cache as one stacked group
        and write them to the cache (the entries `trained` reads)."""
        specs = [model_spec(self.cfg, split, hook, seed) for split, seed, hook in jobs]
        self.cache.create_many(stage, specs, partial(self._fit_group, stage, jobs, specs))

    def _fit_group(self, stage: str, jobs: list[tuple], specs: list[dict], todo: list[int]) -> list[dict]:
        """Train `jobs[i]` for i in `todo` together, stacked; their cache entries (the group's cost shared
        equally)."""
        recipe = plain(self.cfg.recipe)
        splits, seeds, hooks = zip(*(jobs[i] for i in todo))
        models, streams = [], []
        for split, seed, hook in zip(splits, seeds, hooks):
            model, batches = self.fresh(split, seed, hook)  # exactly as `trained` starts each model
            models.append(model.to(self.runtime.device))
            streams.append(batches)
        what = f"{self.cfg.model.name}, {len(splits[0])} samples each, {recipe['epochs']} epochs"
        seed_list = ", ".join(map(str, seeds))
        log.info(
            "training %d %s models together (%s, seeds %s) on %s",
            len(models),
            stage,
            what,
            seed_list,
            self.runtime.device,
        )
        checkpoints = self.cache.root / "partial" / f"{stage}-group-{spec_hash([specs[i] for i in todo])}"
        every = self.runtime.checkpoint_every(recipe["epochs"])
        sync(self.runtime.device)
        start = time.perf_counter()
        states = fit_many(
            models,
            streams,
            recipe,
            plain(self.cfg.trainer),
            self.runtime.autocast,
            checkpoints if every is not None else None,
            checkpoint_every=every or 1,
        )
        sync(self.runtime.device)
        each = (time.perf_counter() - start) / len(states)
        shutil.rmtree(checkpoints, ignore_errors=True)
        return [_payload(state, hook, each, self.runtime.device) for state, hook in zip(states, hooks)]
