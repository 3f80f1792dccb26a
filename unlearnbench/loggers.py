"""Experiment loggers: CSV by default, Weights & Biases (offline unless a key is configured), or none.

A run logs its config once, and metrics with a step: the training curves of the models it trains (forwarded
from Lightning by `training.lightning.fit`), a method's diagnostics (`ctx.log`) and the final results. The
loggers are ours, not Lightning's, so a run that trains nothing (every model cached) never imports Lightning.
"""

from __future__ import annotations

import csv
import io
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


class RunLogger(ABC):
    @abstractmethod
    def log_hyperparams(self, params: dict[str, Any]) -> None:
        """The run's resolved config."""

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Numbers at a step (an epoch of a training, a method's call, the results)."""

    def close(self, status: str) -> None:
        """Finish (also when the run failed: `status` says how it ended)."""


class CSVLogger(RunLogger):
    """`<save_dir>/<name>/metrics.csv` (a row per call: step and the values given) and `hparams.yaml`."""

    def __init__(self, save_dir: str, name: str = "csv"):
        self.folder = Path(save_dir) / name
        self.rows: list[dict[str, Any]] = []

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        from unlearnbench.files import atomic_write_text

        atomic_write_text(self.folder / "hparams.yaml", OmegaConf.to_yaml(OmegaConf.create(params)))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from unlearnbench.files import atomic_write_text

        self.rows.append({"step": step, **metrics})
        columns = ["step", *sorted({k for row in self.rows for k in row} - {"step"})]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(
            self.folder / "metrics.csv", text.getvalue()
        )  # whole after every call: a crash keeps it


class WandbLogger(RunLogger):
    """A Weights & Biases run under `save_dir`; offline when `offline` is None and no API key is configured."""

    def __init__(
        self,
        project: str = "unlearnbench",
        save_dir: str = ".",
        offline: bool | None = None,
        **init_kwargs: Any,
    ):
        import wandb

        if offline is None:
            has_key = bool(os.environ.get("WANDB_API_KEY")) or "api.wandb.ai" in _netrc()
            offline = not has_key or os.environ.get("WANDB_MODE") == "offline"
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project, dir=save_dir, mode="offline" if offline else "online", **init_kwargs
        )
        self.step = 0  # W&B wants increasing steps; each training restarts its own epochs, so we count calls

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=self.step)
        self.step += 1

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "success" else 1)


def _netrc() -> str:
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return path.read_text() if path.is_file() else ""


def make_logger(node: DictConfig | None) -> RunLogger | None:
    """The configured logger; its `name` is an argument here (CSV folder, W&B run name), not a label."""
    if node is None or "_target_" not in node:
        return None
    from hydra.utils import instantiate

    return instantiate(node)


def _flatten(prefix: str, values: dict | None) -> dict[str, float]:
    return {f"{prefix}/{k}": float(v) for k, v in (values or {}).items() if isinstance(v, (int, float))}


def log_results(logger: RunLogger | None, cfg: DictConfig, results: dict) -> None:
    if logger is None:
        return
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    flat = _flatten("unlearned", results["metrics"])
    flat |= _flatten("original", results["original"]["metrics"])
    flat |= _flatten("retrain", (results["retrain"] or {}).get("metrics"))
    flat |= _flatten("gap", results["gap"]) | _flatten("time_s", results["time_s"])
    logger.log_metrics(flat, step=0)


def close_logger(logger: RunLogger | None, status: str) -> None:
    """Always finish the logger (W&B runs included), also when the run failed."""
    if logger is not None:
        logger.close(status)
