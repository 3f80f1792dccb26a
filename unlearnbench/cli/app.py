"""`unlearn`: the Hydra command line, a thin layer over `jobs.run_job` (which calls the pure `runner.run`)."""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from unlearnbench.config.core import config_dir
from unlearnbench.errors import InputAbort, UserError


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def app(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from unlearnbench.sweeps.jobs import objective, run_job

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        results = run_job(cfg, keep_going=multirun)
    except UserError as err:
        raise InputAbort(err) from err
    if not multirun:
        from unlearnbench.cli.console import format_table, where_lines

        print(format_table(results))
        print(where_lines(cfg.paths.output_dir))
    return objective(results, cfg, HydraConfig.get().sweeper)


def _importable_from_here() -> None:
    """`_target_` classes in the user's folder import as they would with `python -m`: the folder joins this
    process's path and, through PYTHONPATH, that of the jobs a launcher starts (joblib, Slurm)."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *paths])


def main() -> None:
    """Bad input is one line on stderr and exit code 2 (HYDRA_FULL_ERROR=1 keeps the traceback)."""
    from unlearnbench.cli.usage import check_group_options, help_text, one_line

    _importable_from_here()

    if {"--help", "-h"} & set(sys.argv[1:]):  # Hydra's --hydra-help stays Hydra's
        print(help_text())
        return
    users_setting = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's multi-line printout
    try:
        check_group_options(sys.argv[1:])
        app()
    except (Exception, InputAbort) as caught:
        err = caught.error if isinstance(caught, InputAbort) else caught
        message = one_line(err, sys.argv[1:])
        if message is None or users_setting == "1":  # not an input error, or the user wants the traceback
            raise err from None
        print(f"unlearn: error: {message}", file=sys.stderr)
        sys.exit(2)
    finally:
        if users_setting is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = users_setting
