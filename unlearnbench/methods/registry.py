"""Every method the configs offer, and what each declares: the one list that tuning, the results table, the
tests and the README's method table read (a new method is its Python file, its YAML and its search space)."""

from __future__ import annotations

import inspect
import sys
from functools import cache

from hydra._internal.utils import _locate
from omegaconf import OmegaConf

from unlearnbench.config.core import config_dir, group_options
from unlearnbench.data.scenarios import CLASSWISE, SCENARIOS


@cache
def method_classes() -> dict[str, type]:
    """Method name (conf/method/<name>.yaml) -> the class its `_target_` names."""
    return {
        name: _locate(str(OmegaConf.load(config_dir() / "method" / f"{name}.yaml")._target_))
        for name in group_options("method")
    }


def methods_for(scenario: str) -> list[str]:
    """The methods that handle the forget scenario `scenario` (their `scenarios` attribute)."""
    return [name for name, cls in method_classes().items() if scenario in cls.scenarios]


def tunable() -> list[str]:
    """The methods with hyperparameters to tune: those with a search space in conf/hparams_search/."""
    return [name for name in method_classes() if name in group_options("hparams_search")]


def forget_overrides(method: str, classes: str = "[0]") -> list[str]:
    """Overrides that run `method` on a scenario it handles: random forgetting (the default) when it can,
    else forgetting the classes `classes`."""
    if "random" in method_classes()[method].scenarios:
        return ["forget=random"]
    return ["forget=class", f"forget.classes={classes}"]


def summary_lines() -> list[str]:
    """One line per method for `unlearn --help`: its name, its module's one-line summary (the paper is cited in
    the module), the data it sees and the scenarios it handles."""
    lines = []
    for name, cls in method_classes().items():
        doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
        first_sentence = " ".join(doc.split("\n\n")[0].split()).split(". ")[0].rstrip(".")
        summary = first_sentence.split(": ", 1)[-1] if doc else cls.__name__
        data = ", ".join(sorted(cls.needs)) or "no data"
        handles = (
            ""
            if set(cls.scenarios) == set(SCENARIOS)
            else "; class-wise only"
            if set(cls.scenarios) <= set(CLASSWISE)
            else f"; {', '.join(cls.scenarios)}"
        )
        lines.append(f"  {name:<19} {summary} [{data}{handles}]")
    return lines
