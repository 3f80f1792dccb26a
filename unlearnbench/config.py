"""Config helpers: where the configs live, building objects from nodes, and up-front validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unlearnbench.errors import ConfigError

# Keys in group configs that describe the node rather than being constructor arguments.
DESCRIPTIVE_KEYS = ("name", "tag")


def config_dir() -> Path:
    """The packaged configs in a wheel install, else the repository's top-level `conf/`."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "conf"


def _join(items: Any, sep: str = "-") -> str:
    return sep.join(str(i) for i in (items if isinstance(items, (list, tuple)) or OmegaConf.is_list(items) else [items]))


if not OmegaConf.has_resolver("join"):
    OmegaConf.register_new_resolver("join", _join)


def build(node: DictConfig, **kwargs: Any) -> Any:
    """Instantiate a `_target_` node, leaving out its descriptive keys (name, tag)."""
    params = {k: v for k, v in node.items() if k not in DESCRIPTIVE_KEYS}
    return instantiate(OmegaConf.create(params), **kwargs)


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
    scenario = build(cfg.forget)
    scenario.check(int(ds.num_classes), bool(ds.get("has_coarse_labels", False)), str(ds.name))
    _check_number("dataset.val_fraction", ds.val_fraction, 0.0, 0.9, inclusive=True)
    for key in ("epochs", "batch_size"):
        value = ds.recipe[key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"dataset.recipe.{key}", value, "a positive integer")
    method = build(cfg.method)
    method.check_scenario(scenario.name)
    return scenario, method
