"""`unlearn`: the Hydra command line. A thin wrapper: checks the input, then calls `runner.run`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from unlearnbench.config import config_dir
from unlearnbench.errors import UserError

CONFIG_DIR = str(config_dir())
# Config groups a user selects by name (`method=ga`); their options are the YAML files in the group folder.
SELECTABLE_GROUPS = ("dataset", "model", "method", "forget", "eval", "trainer", "logger", "paths",
                     "experiment", "debug", "hparams_search", "launcher")


def full_errors() -> bool:
    """HYDRA_FULL_ERROR=1 keeps the traceback of input errors (for debugging)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(message: str) -> None:
    print(f"unlearn: error: {message}", file=sys.stderr)
    sys.exit(2)


def group_options(group: str) -> list[str]:
    folder = Path(CONFIG_DIR) / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def check_overrides(args: list[str]) -> None:
    """One-line errors for unknown group options (`method=nope`), before Hydra builds anything."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # a syntax error in an override
        fail(f"cannot parse the overrides {overrides}: {str(err).splitlines()[0]}")
    for o in parsed:
        group = o.key_or_group
        if group not in SELECTABLE_GROUPS or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        allowed = group_options(group)
        for value in values:
            if value not in allowed and value != "null":
                fail(f"{group}={value} is not an option; allowed: {', '.join(allowed)}")


def precheck(args: list[str]) -> None:
    """Compose the config (first value of each sweep) and validate it, so bad input stops before any file is written."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from unlearnbench.config import validate

    overrides = []
    for o in OverridesParser.create().parse_overrides([a for a in args if "=" in a and not a.startswith("-")]):
        if o.key_or_group.startswith("hydra") and o.key_or_group != "hydra/launcher":
            continue
        value = next(iter(o.sweep_string_iterator())) if o.is_sweep_override() else o.get_value_element_as_str()
        prefix = "+" if o.is_add() else "++" if o.is_force_add() else "~" if o.is_delete() else ""
        overrides.append(f"{prefix}{o.key_or_group}" + ("" if o.is_delete() else f"={value}"))
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
            # Slurm jobs run on the cluster's nodes: the submitting machine needs no GPU of its own.
            on_slurm = str(OmegaConf.select(cfg, "hydra.launcher._target_")).endswith("SlurmLauncher")
            validate(cfg, gpu_here=not on_slurm)
    except UserError as err:
        if full_errors():
            raise
        fail(str(err))
    except Exception as err:  # Hydra / OmegaConf composition errors: keep their first line
        if full_errors():
            raise
        lines = [line for line in str(err).splitlines() if line.strip()]
        fail(" ".join(lines[:2]) if lines else type(err).__name__)
    finally:
        GlobalHydra.instance().clear()


def _remove_partial_run_dir(cfg: DictConfig) -> None:
    """A run that failed on bad input leaves no directory behind (only Hydra's bookkeeping was in it)."""
    try:
        out = Path(cfg.paths.output_dir)
    except Exception:
        return
    if out.is_dir() and not (out / "results.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        # Drop the now-empty parents Hydra made for it, up to the log directory.
        top = Path(cfg.paths.log_dir).resolve()
        for parent in out.resolve().parents:
            if parent == top or top not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def app(cfg: DictConfig) -> float | None:
    from unlearnbench.runner import run

    try:
        results = run(cfg)
    except UserError as err:
        _remove_partial_run_dir(cfg)
        if full_errors():
            raise
        fail(str(err))
    key = cfg.get("optimize_metric")
    for source in (results["metrics"], results["gap"]):
        if source.get(key) is not None:
            return float(source[key])
    return float("nan")  # a diverged run, or the metric was not computed: the sweeper marks the trial failed


def main() -> None:
    args = sys.argv[1:]
    informational = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc"}
    if not informational.intersection(args) and not os.environ.get("UNLEARN_SKIP_PRECHECK"):
        check_overrides(args)
        precheck(args)
    app()


if __name__ == "__main__":
    main()
