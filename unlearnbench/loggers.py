"""Experiment loggers: CSV by default, Weights & Biases (offline unless a key is configured), or none."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def wandb_logger(project: str = "unlearnbench", save_dir: str = ".", offline: bool | None = None, **kwargs: Any):
    """A Lightning `WandbLogger`; offline when `offline` is None and no API key is configured."""
    from pytorch_lightning.loggers import WandbLogger

    if offline is None:
        has_key = bool(os.environ.get("WANDB_API_KEY")) or "api.wandb.ai" in _netrc()
        offline = not has_key or os.environ.get("WANDB_MODE") == "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(project=project, save_dir=save_dir, offline=offline, **kwargs)
    # Lightning passes `anonymous` to wandb.init, which then warns on every run that it has no effect.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _netrc() -> str:
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return path.read_text() if path.is_file() else ""


def make_logger(node: DictConfig | None):
    """The configured logger; its `name` is an argument here (CSV folder, W&B run name), not a label."""
    if node is None or "_target_" not in node:
        return None
    from hydra.utils import instantiate

    return instantiate(node)


def _flatten(prefix: str, values: dict | None) -> dict[str, float]:
    return {f"{prefix}/{k}": float(v) for k, v in (values or {}).items() if isinstance(v, (int, float))}


def log_results(logger, cfg: DictConfig, results: dict) -> None:
    if logger is None:
        return
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    flat = _flatten("unlearned", results["metrics"])
    flat |= _flatten("original", results["original"]["metrics"])
    flat |= _flatten("retrain", (results["retrain"] or {}).get("metrics"))
    flat |= _flatten("gap", results["gap"]) | _flatten("time_s", results["time_s"])
    logger.log_metrics(flat, step=0)
    logger.save()


def close_logger(logger, status: str) -> None:
    """Always finish the logger (W&B runs included), also when the run failed."""
    if logger is None:
        return
    try:
        logger.finalize(status)
    finally:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish(exit_code=0 if status == "success" else 1)
