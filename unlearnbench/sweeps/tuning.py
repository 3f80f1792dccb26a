"""Fair tuning: every method gets the same budget, and first a coarse pass over its strength axis.

A study of TPE trials alone can spend a small budget where a method does nothing (e.g. gradient ascent at a
learning rate too small to move the forget accuracy) and never see where the method works. So each method's
search space (conf/hparams_search/<method>.yaml) names its `strength_axis`, the one knob that sets how hard
the method forgets (its learning rate, or its noise or dampening scale), and tuning runs in two passes:

1. coarse: `coarse` runs spread over the axis's whole declared range (log-spaced on a log axis), the other
   hyperparameters at the method's defaults;
2. TPE: the Optuna study of `trials` trials, with the axis narrowed to one coarse step either side of the best
   coarse point, the other hyperparameters over their declared ranges.

The best of both passes (lowest tune_gap, the Avg Gap without the test split) becomes the tuned preset,
conf/tuned/<setting>/<method>.yaml, which `tuning=<setting>` applies (evaluation then runs on other seeds, so
tuning and reporting never share a seed). Every run is a named, resumable sweep through the real `unlearn`
command, on seed 0 only; every method with a search space (`registry.tunable()`) is tuned, each on a forget
scenario it handles (`registry.forget_overrides`).

  python -m unlearnbench.sweeps.tuning --setting memorise_cifar10 --trials 8 --coarse 5 --data-dir ../shared/data
  make tune SETTING=memorise_cifar10 TRIALS=8                   (or `python scripts/tune.py ...`, the same)
  python -m unlearnbench.sweeps.tuning --setting digits_smoke --methods ga --trials 1 --coarse 2 --out /tmp/tuned
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from unlearnbench.config.core import config_dir
from unlearnbench.errors import ConfigError
from unlearnbench.sweeps.named import ROOT, run_named_sweep, sweep_results

_SPACE = re.compile(r"^\s*(tag\(\s*log\s*,\s*)?interval\(\s*([^,\s]+)\s*,\s*([^,\s)]+)\s*\)\s*\)?\s*$")


@dataclass(frozen=True)
class Axis:
    """A method's strength axis: its override key and declared range."""

    key: str
    low: float
    high: float
    log: bool

    def coarse(self, n: int) -> list[float]:
        """`n` points spread over the whole range, both ends included (log-spaced on a log axis)."""
        if n < 2:
            raise ConfigError("--coarse", n, "at least 2 points")
        if self.log:
            ratio = (self.high / self.low) ** (1 / (n - 1))
            return [float(f"{self.low * ratio**i:.3g}") for i in range(n)]
        return [float(f"{self.low + (self.high - self.low) * i / (n - 1):.4g}") for i in range(n)]

    def narrowed(self, best: float, n: int) -> str:
        """The Optuna search-space override of one coarse step either side of `best`, inside the range."""
        if self.log:
            step = (self.high / self.low) ** (1 / (n - 1))
            low, high = max(self.low, best / step), min(self.high, best * step)
            return f"{self.key}=tag(log, interval({low:.3g}, {high:.3g}))"
        step = (self.high - self.low) / (n - 1)
        low, high = max(self.low, best - step), min(self.high, best + step)
        return f"{self.key}=interval({low:.4g}, {high:.4g})"


def search_space(method: str) -> dict:
    """conf/hparams_search/<method>.yaml as written (not composed)."""
    path = config_dir() / "hparams_search" / f"{method}.yaml"
    if not path.is_file():
        raise ConfigError("hparams_search", method, "a method with a search space in conf/hparams_search/")
    return OmegaConf.to_container(OmegaConf.load(path))


def strength_axis(method: str) -> Axis:
    """The method's declared `strength_axis` and its range from the search space's `params`."""
    space = search_space(method)
    key = space.get("strength_axis")
    params = space["hydra"]["sweeper"]["params"]
    if key not in params:
        raise ConfigError(f"hparams_search/{method}.yaml strength_axis", key, f"one of {sorted(params)}")
    match = _SPACE.match(str(params[key]))
    if match is None:
        raise ConfigError(
            f"hparams_search/{method}.yaml params.{key}",
            params[key],
            "interval(a, b) or tag(log, interval(a, b))",
        )
    return Axis(key, float(match.group(2)), float(match.group(3)), match.group(1) is not None)


def sweep_name(setting: str, method: str, stage: str, overrides: list[str]) -> str:
    """A resumable sweep's name; extra overrides get their own sweep (a smoke run never feeds the real one)."""
    extra = "_" + hashlib.sha256(" ".join(overrides).encode()).hexdigest()[:8] if overrides else ""
    return f"tune_{setting}_{method}{'_coarse' if stage == 'coarse' else ''}{extra}"


def coarse_points(runs: list[dict], key: str) -> list[dict]:
    """(value, tune_gap, forget_acc) of each finished coarse run, by the axis value."""
    points = []
    for r in runs:
        node = r["config"]
        for part in key.split("."):
            node = node[part]
        gap = r["metrics"].get("tune_gap") if r.get("status") == "ok" else None
        forget = r["metrics"].get("forget_acc") if r.get("status") == "ok" else None
        points.append({"value": float(node), "tune_gap": gap, "forget_acc": forget})
    return sorted(points, key=lambda p: p["value"])


def best_coarse(points: list[dict]) -> dict | None:
    finite = [p for p in points if p["tune_gap"] is not None and math.isfinite(p["tune_gap"])]
    return min(finite, key=lambda p: p["tune_gap"]) if finite else None


def choose(coarse: dict | None, tpe: dict | None, key: str) -> dict:
    """The better of the coarse pass's best point and the TPE study's best trial: {"params", "value", "pass"}."""
    options = []
    if tpe is not None and math.isfinite(tpe["value"]):
        options.append({"params": dict(tpe["params"]), "value": float(tpe["value"]), "pass": "TPE"})
    if coarse is not None:
        options.append(
            {"params": {key: coarse["value"]}, "value": float(coarse["tune_gap"]), "pass": "coarse"}
        )
    if not options:
        raise RuntimeError("neither the coarse pass nor the TPE study finished a run")
    return min(options, key=lambda o: o["value"])


def tune_method(
    method: str,
    setting: str,
    scenario: list[str],
    trials: int,
    coarse: int,
    data_dir: str,
    parallel: int = 1,
    overrides: list[str] | None = None,
    root: Path | None = None,
) -> dict:
    """Both passes for one method on experiment=`setting` (see the module docstring), run or resumed from
    `root`/outputs/sweeps; returns `choose`'s dict with the coarse points and both sweeps' summaries."""
    root = root or Path.cwd()
    extra = list(overrides or [])
    axis = strength_axis(method)
    common = [f"experiment={setting}", *scenario, "seed=0", *extra]
    name = sweep_name(setting, method, "coarse", extra)
    values = ",".join(repr(v) for v in axis.coarse(coarse))
    _, coarse_summary = run_named_sweep(
        name,
        [*common, f"method={method}", f"{axis.key}={values}"],
        data_dir,
        parallel,
        f"[tune] {method} coarse:",
        root,
    )
    points = coarse_points(sweep_results(root, name), axis.key)
    best = best_coarse(points)
    name = sweep_name(setting, method, "tpe", extra)
    study = [
        f"hparams_search={method}",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.n_jobs={parallel}",
    ]
    if best is not None:
        study.append(axis.narrowed(best["value"], coarse))
    done, tpe_summary = run_named_sweep(
        name, [*common, *study], data_dir, parallel, f"[tune] {method} TPE:", root
    )
    found = root / "outputs" / "sweeps" / name / "optimization_results.yaml"
    tpe = None
    if found.is_file():
        result = OmegaConf.to_container(OmegaConf.load(found))
        tpe = {"params": result["best_params"], "value": result["best_value"]}
    try:
        chosen = choose(best, tpe, axis.key)
    except RuntimeError as err:
        tail = done.stderr.strip().splitlines()[-1:] or done.stdout.strip().splitlines()[-1:]
        raise RuntimeError(f"{method}: {err} (exit {done.returncode}: {tail})") from None
    return {
        **chosen,
        "axis": axis.key,
        "coarse": points,
        "summary": f"coarse {coarse_summary}; TPE {tpe_summary}",
    }


def tune(method: str, args: argparse.Namespace) -> dict:
    """Run (or resume) the method's coarse pass and study; return the better one's best point."""
    from unlearnbench.methods.registry import forget_overrides

    started = time.time()
    best = tune_method(
        method,
        args.setting,
        forget_overrides(method),
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
    return f"{CURVE_PREFIX}{best['axis']}: " + "; ".join(cells)


CURVE_PREFIX = "coarse pass over "


def read_curve(preset: Path) -> list[tuple[float, float, float]] | None:
    """A tuned preset's coarse pass as `_curve` wrote it: [(axis value, forget acc, tune_gap)], failed points
    left out; None when the file has none."""
    for line in preset.read_text().splitlines():
        if line.startswith(f"# {CURVE_PREFIX}"):
            points = re.findall(r"([\d.e+-]+): forget ([\d.]+) %, tune_gap ([\d.]+)", line)
            return [(float(value), float(acc) / 100, float(gap)) for value, acc, gap in points]
    return None


def write_preset(method: str, best: dict, args: argparse.Namespace) -> Path:
    """conf/tuned/<setting>/<method>.yaml: the best values, and how they were obtained."""
    from unlearnbench.methods.registry import forget_overrides

    path = Path(args.out) / args.setting / f"{method}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    values = "\n".join(
        f"{key.removeprefix('method.')}: {value!r}" for key, value in sorted(best["params"].items())
    )
    path.write_text(
        f"# {method} tuned on experiment={args.setting} ({' '.join(forget_overrides(method))}), seed 0 only, by\n"
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
    from unlearnbench.methods.registry import tunable

    methods = tunable()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", default="memorise_cifar10", help="an experiment preset (conf/experiment/)")
    p.add_argument("--methods", nargs="+", default=methods, choices=methods)
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
