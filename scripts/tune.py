#!/usr/bin/env python
"""Tune every method the same way on one setting, then write each method's best values as a tuned preset.

For each method (unlearnbench/tuning.py): a coarse pass of COARSE runs over the method's strength axis
(`strength_axis` in conf/hparams_search/<method>.yaml, e.g. its lr, over the whole declared range), then an
Optuna TPE study of TRIALS trials with that axis narrowed around the coarse pass's best point, both on seed 0
only, minimising tune_gap (Avg Gap without the test split), as named, resumable sweeps through the real
`unlearn` command (a stopped tuning continues where it stopped). The better of the two passes goes to
conf/tuned/<setting>/<method>.yaml, which `tuning=<setting>` applies; evaluation then runs on other seeds, so
tuning and reporting never share a seed.

  python scripts/tune.py --setting memorise_cifar10 --trials 8 --coarse 5 --data-dir ../shared/data
  make tune SETTING=memorise_cifar10 TRIALS=8
  python scripts/tune.py --setting digits_smoke --methods ga --trials 1 --coarse 2 --out /tmp/tuned  # smoke
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
    """Run (or resume) the method's coarse pass and study; return the better one's best point."""
    from unlearnbench.tuning import tune_method

    started = time.time()
    best = tune_method(
        method,
        args.setting,
        scenario(method),
        args.trials,
        args.coarse,
        args.data_dir,
        args.parallel,
        args.overrides,
        ROOT,
    )
    print(
        f"[tune] {method}: best tune_gap {best['value']:.4f} with {best['params']} ({best['pass']} pass; "
        f"{best['summary']}; {time.time() - started:.0f} s)",
        flush=True,
    )
    return best


def _curve(best: dict) -> str:
    """The coarse pass as one comment line: axis value -> forget accuracy, tune_gap."""
    cells = [
        f"{p['value']:g}: "
        + (
            "failed"
            if p["tune_gap"] is None
            else f"forget {100 * p['forget_acc']:.1f} %, tune_gap {p['tune_gap']:.4f}"
        )
        for p in best["coarse"]
    ]
    return f"coarse pass over {best['axis']}: " + "; ".join(cells)


def write_preset(method: str, best: dict, args: argparse.Namespace) -> Path:
    """conf/tuned/<setting>/<method>.yaml: the best values, and how they were obtained."""
    path = Path(args.out) / args.setting / f"{method}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    values = "\n".join(
        f"{key.removeprefix('method.')}: {value!r}" for key, value in sorted(best["params"].items())
    )
    path.write_text(
        f"# {method} tuned on experiment={args.setting} ({' '.join(scenario(method))}), seed 0 only, by\n"
        f"# `python scripts/tune.py --setting {args.setting} --trials {args.trials} --coarse {args.coarse}` on "
        f"{datetime.date.today()}:\n"
        f"# {args.coarse} coarse runs, then {args.trials} Optuna TPE trials (conf/hparams_search/{method}.yaml); "
        f"best ({best['pass']} pass) tune_gap\n# "
        f"{best['value']:.4f} (mean |gap| to Retrain over forget / retain / val accuracy and MIA-efficacy on\n"
        f"# D_val; no test-split value). Applied with `tuning={args.setting}`; evaluate on other seeds.\n"
        f"# {best['summary']}\n"
        f"# {_curve(best)}\n"
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
    p.add_argument(
        "--coarse", type=int, default=5, help="coarse-pass runs over each method's strength axis (before TPE)"
    )
    p.add_argument("--parallel", type=int, default=1, help="trials run at once (joblib processes)")
    p.add_argument("--out", default=str(ROOT / "conf" / "tuned"), help="where <setting>/<method>.yaml go")
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
