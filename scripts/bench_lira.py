"""Benchmark the shadow-model evaluation (`eval=full`: LiRA, U-LiRA, NeurIPS 2023 score) end to end.

Runs `run(cfg)` once with a fresh temporary model cache, so every shadow model is trained, and times
each request the metrics make to the run's ShadowContext (trainings from scratch, and unlearning
runs). Prints shadow models per minute and the metric values as markdown tables.

    python scripts/bench_lira.py                                   # digits, CPU, 16 shadows
    python scripts/bench_lira.py --dataset fashion_mnist --data-dir ../shared/data --device cuda --epochs 5

Shadow models per run: N retrained without a random half of D_f (LiRA, U-LiRA), N unlearned from the
run's original (U-LiRA), N originals + N unlearned + N retrained with their own seeds (challenge
score): 3N trainings and 2N unlearning runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from functools import partial
from pathlib import Path

import torch
from omegaconf import open_dict

from unlearnbench import compose, run
from unlearnbench.evaluation import ShadowContext

SHADOW_PREFIXES = ("lira", "ulira", "neurips")
EXTRA_METRICS = ("mia_efficacy", "mia_loss", "mia_entropy", "avg_gap")
ORIGINAL, RETRAINED, UNLEARNED = "original (trained)", "retrained (trained)", "unlearned (method run)"
TRAININGS = (ORIGINAL, RETRAINED)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("digits", "fashion_mnist"), default="digits")
    p.add_argument("--data-dir", default=None, help="folder holding FashionMNIST/raw (fashion_mnist only)")
    p.add_argument("--num-shadows", type=int, default=16)
    p.add_argument("--model", choices=("small_cnn", "resnet18", "mlp"), default="small_cnn")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the dataset's recipe)")
    p.add_argument("--method", default="ft", help="unlearning method config name")
    p.add_argument("--method-epochs", type=int, default=None, help="override method.epochs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    args = p.parse_args(argv)
    for key in ("num_shadows", "epochs", "method_epochs", "threads"):
        value = getattr(args, key)
        if value is not None and value < (2 if key == "num_shadows" else 1):
            p.error(f"--{key.replace('_', '-')} is too small: {value}")
    if args.dataset == "fashion_mnist" and args.data_dir is None:
        p.error("--dataset fashion_mnist needs --data-dir (the folder holding FashionMNIST/raw)")
    return args


def pick_trainer(name: str) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    return "gpu" if name in ("cuda", "auto") and torch.cuda.is_available() else "cpu"


def compose_cfg(args: argparse.Namespace, workdir: Path):
    overrides = [f"dataset={args.dataset}", f"model={args.model}", f"method={args.method}", "eval=full",
                 f"eval.num_shadows={args.num_shadows}", f"trainer={pick_trainer(args.device)}",
                 "logger=none",
                 f"seed={args.seed}", f"trainer.enable_progress_bar={str(args.progress).lower()}"]
    if args.epochs is not None:
        overrides.append(f"recipe.epochs={args.epochs}")
    if args.method_epochs is not None:
        overrides.append(f"method.epochs={args.method_epochs}")
    cfg = compose(overrides, output_dir=workdir / "run")
    with open_dict(cfg):
        cfg.paths.cache_dir = str(workdir / "cache")  # fresh: every shadow model is trained
        cfg.paths.data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else str(workdir / "data")
    return cfg


class TimedShadowContext(ShadowContext):
    """ShadowContext that records how many models each request kind produced and how long it took."""

    def __init__(self, *args, timings: dict[str, list[float]], **kwargs):
        super().__init__(*args, **kwargs)
        self.timings = timings

    def _timed(self, kind: str, fn, *args, **kwargs):
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize(self.runtime.device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize(self.runtime.device)
        self.timings[kind].append(time.perf_counter() - start)
        return out

    def original(self, seed):
        return self._timed(ORIGINAL, super().original, seed)

    def retrained(self, keep, seed):
        return self._timed(RETRAINED, super().retrained, keep, seed)

    def unlearned(self, keep, seed, original=None, hook_state=None):
        return self._timed(UNLEARNED, super().unlearned, keep, seed, original, hook_state)


def markdown(rows: list[tuple], header: tuple[str, ...], align: str) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    timings: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench_lira_") as tmp:
        cfg = compose_cfg(args, Path(tmp))
        start = time.perf_counter()
        results = run(cfg, shadow_context=partial(TimedShadowContext, timings=timings))
        total = time.perf_counter() - start
    shadow_s = sum(sum(t) for t in timings.values())
    n_models = sum(len(t) for t in timings.values())
    n_trained = sum(len(timings[k]) for k in TRAININGS)
    trained_s = sum(sum(timings[k]) for k in TRAININGS)

    env = results["env"]
    print()
    print(f"eval=full on {args.dataset} / {args.model} / method {args.method}, "
          f"N = {args.num_shadows} shadows, recipe {cfg.recipe.epochs} epochs, forget {results['forget']['size']} samples, device "
          f"{env['device']} ({env['device_name']}), torch {env['torch']}, {torch.get_num_threads()} threads")
    print()
    rows = [(k, len(t), f"{sum(t):.1f}", f"{sum(t) / len(t):.2f}", f"{60 * len(t) / sum(t):.1f}")
            for k, t in sorted(timings.items())]
    rows.append(("all shadow models", n_models, f"{shadow_s:.1f}", f"{shadow_s / n_models:.2f}",
                 f"{60 * n_models / shadow_s:.1f}"))
    header = ("shadow requests", "models", "time (s)", "s/model", "models/min")
    print(markdown(rows, header, ("---", "---:", "---:", "---:", "---:")))
    print()
    print(f"shadow trainings per minute: {60 * n_trained / trained_s:.1f} ({n_trained} trainings in "
          f"{trained_s:.1f} s); eval stage {results['time_s']['eval']:.1f} s (includes predictions and "
          f"attacks); whole run {total:.1f} s")
    print()
    unlearned = results["metrics"]
    retrain = (results["retrain"] or {}).get("metrics", {})
    shown = [k for k in unlearned if k.startswith(SHADOW_PREFIXES) or k in EXTRA_METRICS]
    metric_rows = [(k, f"{unlearned[k]:.4f}", f"{retrain[k]:.4f}" if k in retrain else "") for k in shown]
    header = ("metric", f"unlearned ({args.method})", "Retrain model")
    print(markdown(metric_rows, header, ("---", "---:", "---:")))
    return {"shadow_models": n_models, "shadow_trainings": n_trained, "shadow_seconds": shadow_s,
            "models_per_minute": 60 * n_models / shadow_s, "trainings_per_minute": 60 * n_trained / trained_s,
            "metrics": unlearned}


if __name__ == "__main__":
    main()
