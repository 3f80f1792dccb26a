#!/usr/bin/env python
"""Tune every method the same way on one setting, then write each method's best values as a tuned preset.

For each method: an Optuna study (conf/hparams_search/<method>.yaml: TPE, fixed sampler seed) of TRIALS
trials on seed 0 only, minimising tune_gap (Avg Gap without the test split), run as a named, resumable
sweep through the real `unlearn` command (a stopped tuning continues where it stopped). The best values
go to conf/tuned/<setting>/<method>.yaml, which `tuning=<setting>` applies; evaluation then runs on other
seeds, so tuning and reporting never share a seed.

  python scripts/tune.py --setting memorise_cifar10 --trials 8 --data-dir ../shared/data
  make tune SETTING=memorise_cifar10 TRIALS=8
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Methods with hyperparameters (retrain and none have none), and the scenario each is tuned on.
CLASSWISE = ("mnemonic",)
METHODS = (
    "ft",
    "ga",
    "neggrad_plus",
    "random_label",
    "l1_sparse",
    "salun",
    "scrub",
    "ssd",
    "bad_teacher",
    "fisher",
    "imu",
    "gradtau",
    "boundary_shrink",
    "iu",
    "boundary_expanding",
    *CLASSWISE,
)


def scenario(method: str) -> list[str]:
    return ["forget=class", "forget.classes=[0]"] if method in CLASSWISE else ["forget=random"]


def tune(method: str, args: argparse.Namespace) -> dict:
    """Run (or resume) the method's study; return its best trial as {"params", "value"}."""
    from omegaconf import OmegaConf
    from results_table import run_named_sweep

    name = f"tune_{args.setting}_{method}"
    overrides = [
        f"experiment={args.setting}",
        f"hparams_search={method}",
        *scenario(method),
        "seed=0",
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.n_jobs={args.parallel}",
        *args.overrides,
    ]
    started = time.time()
    done, summary = run_named_sweep(name, overrides, args.data_dir, args.parallel, tag=f"[tune] {method}:")
    sweep = ROOT / "outputs" / "sweeps" / name
    best = sweep / "optimization_results.yaml"
    if not best.is_file():
        raise RuntimeError(
            f"{method}: no optimization_results.yaml (exit {done.returncode}): "
            f"{done.stderr.strip().splitlines()[-1:] or done.stdout.strip().splitlines()[-1:]}"
        )
    result = OmegaConf.to_container(OmegaConf.load(best))
    print(
        f"[tune] {method}: best tune_gap {result['best_value']:.4f} with {result['best_params']} "
        f"({summary or 'no summary'}; {time.time() - started:.0f} s)",
        flush=True,
    )
    return {"params": result["best_params"], "value": result["best_value"], "summary": summary}


def write_preset(method: str, best: dict, args: argparse.Namespace) -> Path:
    """conf/tuned/<setting>/<method>.yaml: the best values, and how they were obtained."""
    path = ROOT / "conf" / "tuned" / args.setting / f"{method}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    values = "\n".join(
        f"{key.removeprefix('method.')}: {value!r}" for key, value in sorted(best["params"].items())
    )
    path.write_text(
        f"# {method} tuned on experiment={args.setting} ({' '.join(scenario(method))}), seed 0 only, by\n"
        f"# `python scripts/tune.py --setting {args.setting} --trials {args.trials}` on {datetime.date.today()}:\n"
        f"# {args.trials} Optuna TPE trials (conf/hparams_search/{method}.yaml), best tune_gap "
        f"{best['value']:.4f} (mean |gap| to Retrain over forget / retain / val accuracy and MIA-efficacy on\n"
        f"# D_val; no test-split value). Applied with `tuning={args.setting}`; evaluate on other seeds.\n"
        f"# {best['summary']}\n"
        f"preset: tuned/{args.setting}\n{values.replace('True', 'true').replace('False', 'false')}\n"
    )
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", default="memorise_cifar10", help="an experiment preset (conf/experiment/)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument(
        "--trials", type=int, default=8, help="trials per method (the same budget for every method)"
    )
    p.add_argument("--parallel", type=int, default=1, help="trials run at once (joblib processes)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("overrides", nargs="*", help="extra overrides for every trial (e.g. recipe.epochs=5)")
    args = p.parse_args(argv)
    for method in args.methods:
        try:
            print(f"[tune] wrote {write_preset(method, tune(method, args), args)}", flush=True)
        except RuntimeError as err:  # one method's failed study must not stop the others
            print(f"[tune] FAILED {err}", flush=True)


if __name__ == "__main__":
    main()
