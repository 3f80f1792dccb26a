"""Config helpers: where the configs live, building objects from nodes, and up-front validation."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from hydra._internal.utils import _locate
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from unlearnbench.config.checks import check_choice, check_int, check_number, is_int, is_number
from unlearnbench.data.scenarios import CLASSWISE
from unlearnbench.data.splits import VAL_SOURCES
from unlearnbench.errors import ConfigError, UserError

# Keys in group configs that describe the node rather than being constructor arguments.
DESCRIPTIVE_KEYS = ("name", "tag", "preset")


def config_dir() -> Path:
    """The packaged configs in a wheel install, else the repository's top-level `conf/`."""
    packaged = Path(__file__).resolve().parents[1] / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf"


def group_options(group: str, extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    """The options of a config group (`method` -> bad_teacher, ..., ssd), with those of the user's config
    folders `extra_dirs` (`--config-dir`); [] when it is not a group. A file named `_*.yaml` is a base the
    options extend (`defaults: [_sgd]`), not an option."""
    folders = [d / group for d in (config_dir(), *extra_dirs) if (d / group).is_dir()]
    return sorted({p.stem for folder in folders for p in folder.glob("*.yaml") if not p.stem.startswith("_")})


def plain(node: Any) -> Any:
    """A config node as plain, resolved Python containers; anything else as it is."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _join(items: Any, sep: str = "-") -> str:
    return sep.join(
        str(i) for i in (items if isinstance(items, (list, tuple)) or OmegaConf.is_list(items) else [items])
    )


def _sweep_dir(name: str | None, stamp: str) -> str:
    """`sweeps/NAME` for a named (resumable) sweep, else a fresh `multirun/<timestamp>`."""
    return f"sweeps/{name}" if name else f"multirun/{stamp}"


def _job_dir(override_dirname: str, num: int) -> str:
    """A sweep job's folder: its overrides (deterministic, so a rerun finds it), else `job<num>`."""
    name = override_dirname.replace("/", "_") or f"job{num}"
    if len(name) > 200:  # file-name limits: keep a readable prefix and a hash of the whole
        name = f"{name[:180]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return name


def _user_cache() -> str:
    """The model cache every run of this user shares, wherever it starts: $UNLEARN_CACHE, else the XDG cache."""
    import os

    if os.environ.get("UNLEARN_CACHE"):
        return os.environ["UNLEARN_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "unlearnbench")


def _on_cuda(if_cuda: Any, otherwise: Any) -> Any:
    """`trainer=auto`: one value when a CUDA device is visible, the other when not."""
    import torch

    return if_cuda if torch.cuda.is_available() else otherwise


def _gpus_for(accelerator: str, devices: Any = 1) -> int:
    """GPUs a job needs for this trainer: its device count on a GPU trainer, else 0 (for Slurm requests)."""
    if str(accelerator) not in ("gpu", "cuda"):
        return 0
    return devices if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0 else 1


for _name, _fn in (
    ("join", _join),
    ("sweep_dir", _sweep_dir),
    ("job_dir", _job_dir),
    ("gpus_for", _gpus_for),
    ("on_cuda", _on_cuda),
    ("user_cache", _user_cache),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def compose(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> DictConfig:
    """The composed config for `overrides`, without a Hydra app: `run(compose(["method=imu"]))` works anywhere.

    `paths.output_dir` (under Hydra: the run directory) is `output_dir`, else the directory a single run
    of the same command would get.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="unlearn"):
            cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir) if output_dir is not None else str(cfg.hydra.run.dir)
        del cfg["hydra"]
    return cfg


def known_top_level_keys() -> set[str]:
    """Keys the primary config defines, and the groups it mounts (model, dataset, method, ...)."""
    primary = OmegaConf.load(config_dir() / "config.yaml")
    groups = {
        str(next(iter(entry))).split()[-1].split("@")[-1]
        for entry in primary.defaults
        if OmegaConf.is_dict(entry)
    }
    return {str(k) for k in primary if k != "defaults"} | groups


def _key_prefix(node) -> str:
    """Where `node` sits in the composed config (`method`, `eval.metrics.lira`), or `config` when loose."""
    if OmegaConf.is_config(node) and node._get_parent() is not None:
        return node._get_full_key(None)
    return "config"


def _check_target(node, target: str | None) -> None:
    """A `_target_` that cannot be imported is one line naming the key and where classes are found."""
    if not target:
        return
    try:
        _locate(target)
    except Exception as err:  # ImportError, or whatever the user's module raises on import
        reason = f" ({str(err).strip().splitlines()[-1]})"
        raise ConfigError(
            f"{_key_prefix(node)}._target_",
            target,
            "a class importable from the folder `unlearn` runs in, an installed package or PYTHONPATH"
            + reason,
        ) from None


def _check_keys(node, target: str | None, params: dict) -> None:
    """A key the target's signature does not accept (a misspelt hyperparameter) is one line listing those it
    does; a target taking **kwargs accepts any."""
    if not target:
        return
    try:
        accepted = inspect.signature(_locate(target)).parameters
    except (TypeError, ValueError):  # no signature to read: instantiation says what is wrong
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return
    unknown = next((k for k in params if not k.startswith("_") and k not in accepted), None)
    if unknown is not None:
        raise ConfigError(
            f"{_key_prefix(node)}.{unknown}",
            params[unknown],
            f"keys accepted by {target}: {', '.join(sorted(accepted))}",
        )


def build(node: DictConfig, **kwargs: Any) -> Any:
    """Instantiate a `_target_` node, leaving out its descriptive keys (name, tag).

    A key the target does not accept (a misspelt hyperparameter) becomes a one-line `ConfigError`.
    """
    params = {k: v for k, v in plain(node).items() if k not in DESCRIPTIVE_KEYS}
    _check_target(node, params.get("_target_"))
    _check_keys(node, params.get("_target_"), {**params, **kwargs})
    try:
        return instantiate(params, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):  # e.g. a dataset loader saying its files are missing
            raise err.__cause__ from None
        raise


# Annotation (as written, postponed) -> (accepts, description). bool is not an int here.
_TYPES = {
    "int": (is_int, "an integer"),
    "float": (is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
}
# Ranges of hyperparameters that mean the same thing in every method, metric and optimiser, checked here
# only (not again in constructors): name -> check(key, value).
_RANGES = {
    "lr": partial(check_number, low=0, low_open=True),
    "epochs": partial(check_int, minimum=1),
    "batch_size": partial(check_int, minimum=1),
    "weight_decay": partial(check_number, low=0),
    "momentum": partial(check_number, low=0, high=1, high_open=True),
}


def _set_at(node: DictConfig, name: str, key: str) -> str:
    """The key the user sets for `node.name`: the top-level key it interpolates (`ratio: ${forget_ratio}` ->
    forget_ratio), else `key.name`."""
    raw = node._get_node(name)._value() if OmegaConf.is_interpolation(node, name) else None
    source = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return source.group(1) if source else f"{key}.{name}"


def check_params(node: DictConfig, key: str) -> None:
    """Types (from the target's signature) and common ranges of a `_target_` node's arguments."""
    target = node.get("_target_") if OmegaConf.is_dict(node) else None
    if not target:
        return
    try:
        params = inspect.signature(_locate(target)).parameters
    except Exception:  # an unimportable target is reported by instantiation itself
        return
    for name, value in OmegaConf.to_container(node, resolve=True).items():
        if name.startswith("_") or name in DESCRIPTIVE_KEYS or name not in params:
            continue
        annotation = str(params[name].annotation).replace(" ", "")
        optional = annotation.endswith("|None") or annotation.startswith("None|")
        base = annotation.replace("|None", "").replace("None|", "")
        if value is None and optional:
            continue
        if base in _TYPES:
            ok, what = _TYPES[base]
            if not ok(value):
                raise ConfigError(_set_at(node, name, key), value, what + (" or null" if optional else ""))
        if name in _RANGES and is_number(value):
            _RANGES[name](_set_at(node, name, key), value)


def validate(cfg: DictConfig) -> tuple[Any, Any]:
    """Check the composed config before any work (inside the job, on the machine that runs it); return the
    built (scenario, method).

    Raises `ConfigError` (one line: key, bad value, what is allowed) on the first problem.
    """
    known = known_top_level_keys()
    unknown = sorted(str(k) for k in cfg if k not in known)
    if unknown:  # e.g. `+forget_rato=0.1`: Hydra adds the key; nothing would read it
        from unlearnbench.config.suggest import unknown_key

        raise UserError(unknown_key(unknown[0], [], known=[str(k) for k in cfg if k in known]))
    # forget_ratio is checked by forget=random, the scenario that reads it (data/scenarios.py)
    check_int("seed", cfg.seed, minimum=0)
    ds = cfg.dataset
    check_params(cfg.forget, "forget")
    scenario = build(cfg.forget)
    scenario.check(int(ds.num_classes), bool(ds.get("has_coarse_labels", False)), str(ds.name))
    check_number("dataset.val_fraction", ds.val_fraction, 0.0, 0.9)
    if ds.get("val_source", "train") not in VAL_SOURCES:
        raise ConfigError("dataset.val_source", ds.val_source, " or ".join(VAL_SOURCES))
    for key in ("epochs", "batch_size"):  # the recipe's own keys, with the ranges every optimiser shares
        _RANGES[key](f"recipe.{key}", cfg.recipe[key])
    check_params(cfg.recipe.optimizer, "recipe.optimizer")
    limit = cfg.runtime.get("limit_batches")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ConfigError("runtime.limit_batches", limit, "a positive integer or null")
    check_params(cfg.method, "method")
    batched = cfg.eval.get("batched_shadows", False)
    if not isinstance(batched, bool):
        raise ConfigError("eval.batched_shadows", batched, "true or false")
    check_params(cfg.model, "model")
    for name, metric in cfg.eval.metrics.items():
        check_params(metric, f"eval.metrics.{name}")
    method = build(cfg.method)
    handles = "class-wise scenarios only" if set(method.scenarios) <= set(CLASSWISE) else "these only"
    check_choice("forget", scenario.name, method.scenarios, hint=f"{cfg.method.name} handles {handles}")
    # The metrics' own options are checked by their constructors, when the run builds them (once).
    from unlearnbench.runtime import device_for

    device_for(str(cfg.trainer.get("accelerator", "cpu")))
    return scenario, method
