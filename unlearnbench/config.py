"""Config helpers: where the configs live, building objects from nodes, and up-front validation."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from hydra._internal.utils import _locate
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unlearnbench.errors import ConfigError, UserError

# Keys in group configs that describe the node rather than being constructor arguments.
DESCRIPTIVE_KEYS = ("name", "tag", "preset")


def config_dir() -> Path:
    """The packaged configs in a wheel install, else the repository's top-level `conf/`."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "conf"


def _join(items: Any, sep: str = "-") -> str:
    return sep.join(str(i) for i in (items if isinstance(items, (list, tuple)) or OmegaConf.is_list(items) else [items]))


if not OmegaConf.has_resolver("join"):
    OmegaConf.register_new_resolver("join", _join)


def build(node: DictConfig, **kwargs: Any) -> Any:
    """Instantiate a `_target_` node, leaving out its descriptive keys (name, tag).

    A key the target does not accept (a misspelt hyperparameter) becomes a one-line `ConfigError`.
    """
    resolved = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    params = {k: v for k, v in resolved.items() if k not in DESCRIPTIVE_KEYS}
    try:
        return instantiate(params, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):  # e.g. a dataset loader saying its files are missing
            raise err.__cause__ from None
        match = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if match is None:
            raise
        prefix = node._get_full_key(None) if OmegaConf.is_config(node) and node._get_parent() is not None else "config"
        target = params.get("_target_", "")
        accepted = sorted(inspect.signature(_locate(target)).parameters) if target else []
        raise ConfigError(f"{prefix}.{match.group(1)}", params[match.group(1)] if match.group(1) in params else None,
                          f"keys accepted by {target}: {', '.join(accepted)}") from None


# Annotation (as written, postponed) -> (accepts, description). bool is not an int here.
_TYPES = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
}
# Ranges of hyperparameters that mean the same thing in every method: name -> (check, allowed).
_RANGES = {
    "lr": (lambda v: v > 0, "a number > 0"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "num_shadows": (lambda v: v >= 2, "an integer >= 2"),
}


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
                raise ConfigError(f"{key}.{name}", value, what + (" or null" if optional else ""))
        if name in _RANGES and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok, what = _RANGES[name]
            if not ok(value):
                raise ConfigError(f"{key}.{name}", value, what)


def _check_number(key: str, value: Any, low: float, high: float, inclusive: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (low <= value <= high) if inclusive else (low < value < high)
    if not ok:
        bracket = f"[{low}, {high}]" if inclusive else f"({low}, {high})"
        raise ConfigError(key, value, f"a number in {bracket}")


def validate(cfg: DictConfig) -> tuple[Any, Any]:
    """Check the composed config before any work; return the built (scenario, method).

    Raises `ConfigError` (one line: key, bad value, what is allowed) on the first problem.
    """
    _check_number("forget_ratio", cfg.forget_ratio, 0.0, 1.0)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise ConfigError("seed", cfg.seed, "a non-negative integer")
    ds = cfg.dataset
    check_params(cfg.forget, "forget")
    scenario = build(cfg.forget)
    scenario.check(int(ds.num_classes), bool(ds.get("has_coarse_labels", False)), str(ds.name))
    _check_number("dataset.val_fraction", ds.val_fraction, 0.0, 0.9, inclusive=True)
    for key in ("epochs", "batch_size"):
        value = ds.recipe[key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"dataset.recipe.{key}", value, "a positive integer")
    check_params(cfg.method, "method")
    batched = cfg.eval.get("batched_shadows", False)
    if not isinstance(batched, bool):
        raise ConfigError("eval.batched_shadows", batched, "true or false")
    check_params(cfg.model, "model")
    for name, metric in cfg.eval.metrics.items():
        check_params(metric, f"eval.metrics.{name}")
    method = build(cfg.method)
    method.check_scenario(scenario.name)
    for metric in cfg.eval.metrics.values():
        build(metric)  # metric options are checked in their constructors
    if str(cfg.trainer.get("accelerator")) in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("trainer", "gpu", "cpu (no CUDA device is visible on this machine)")
    return scenario, method
