"""Regenerate docs/results.md: every method on the memorising CPU-scale setting, and the seed papers' claims.

The setting is `experiment=memorise_cifar10` (conf/experiment/memorise_cifar10.yaml: an MLP memorises 9,000
CIFAR-10 images, so Retrain's forget accuracy is ~54 points below the original's). Every grid is a named,
resumable sweep through the real `unlearn` command (a stopped regeneration continues where it stopped):

- the main table: every method at its defaults x {random 10 %, class 0} x seeds 0, 1, 2, with `eval=deep`, and
  per scenario which methods look good on outputs but not on representations (unlearnbench/report/deep.py);
  the methods of each scenario are those that declare it (`registry.methods_for`);
- GA at several learning rates (the curve IMU is compared with at matched forget accuracy);
- the tuned presets (conf/tuned/memorise_cifar10/, tuned on seed 0 by scripts/tune.py) on seeds 1 and 2,
  beside the defaults on the same held-out seeds.
Then the report's tables and the per-seed claim checks are written to docs/results.md.

  python scripts/results_table.py --data-dir ../shared/data        # everything (about 2 h on 2 CPU cores)
  python scripts/results_table.py --report-only                    # only re-read the finished runs
  (the same as `python -m unlearnbench.report.results ...`)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from unlearnbench import provenance
from unlearnbench.report.claims import K, by, gradtau_claim, imu_claim, mnemonic_claim, no_op_lines, pct
from unlearnbench.report.tables import markdown
from unlearnbench.sweeps.named import ROOT, run_named_sweep, sweep_results
from unlearnbench.sweeps.protocols import GA_CURVE_LR
from unlearnbench.sweeps.tuning import read_curve

SETTING = "memorise_cifar10"
SCENARIOS = {"random": ["forget=random", "forget_ratio=0.1"], "class": ["forget=class", "forget.classes=[0]"]}
HELD_OUT = [1, 2]  # the seeds tuning never saw (it used seed 0)
EVAL = "eval=deep"  # the standard metrics plus the representation ones, for every method row
SWEEPS = ROOT / "outputs" / "sweeps"


def sweeps(seeds: list[int], root: Path = ROOT) -> dict[str, list[str]]:
    """Sweep name -> its overrides (beyond the setting)."""
    from unlearnbench.methods.registry import methods_for

    listed = ",".join(map(str, seeds))
    tuned = sorted(p.stem for p in (root / "conf" / "tuned" / SETTING).glob("*.yaml"))
    out = {
        f"results_{scenario}": [*SCENARIOS[scenario], EVAL, f"method={','.join(methods_for(scenario))}"]
        for scenario in SCENARIOS
    }
    out = {name: [*overrides, f"seed={listed}"] for name, overrides in out.items()}
    out["results_ga_curve"] = [*SCENARIOS["random"], "method=ga", f"method.lr={','.join(GA_CURVE_LR)}"]
    out["results_ga_curve"].append(f"seed={listed}")
    held_out = ",".join(str(s) for s in HELD_OUT if s in seeds)
    # A tuned method runs on random forgetting where it handles it, else on the class scenario only.
    tuned_random = [m for m in tuned if m in methods_for("random")]
    for scenario, methods in (
        ("random", tuned_random),
        ("class", [m for m in tuned if m not in tuned_random]),
    ):
        if methods and held_out:
            out[f"results_tuned_{scenario}"] = [
                *SCENARIOS[scenario],
                EVAL,
                f"tuning={SETTING}",
                f"method={','.join(methods)}",
                f"seed={held_out}",
            ]
    return out


def run_sweep(name: str, overrides: list[str], data_dir: str, parallel: int) -> None:
    started = time.time()
    done, summary = run_named_sweep(name, [f"experiment={SETTING}", *overrides], data_dir, parallel, cwd=ROOT)
    print(
        f"[results] {name}: {summary or done.stderr.strip()[-500:]} ({time.time() - started:.0f} s)",
        flush=True,
    )


def setting_lines(random_runs: list[dict]) -> list[str]:
    """The two numbers that give the setting teeth, and the CPU time of original + Retrain, per seed."""
    header = (
        "seed",
        "original train acc",
        "original forget acc",
        "Retrain forget acc",
        "gap",
        "original test acc",
        "original + Retrain training (s)",
    )
    rows = []
    for seed in sorted({r["seed"] for r in random_runs}):
        r = by(random_runs, seed=seed)[0]
        o, t, sizes = r["original"]["metrics"], r["retrain"]["metrics"], r["sizes"]
        train_acc = (o["forget_acc"] * sizes["forget"] + o["retain_acc"] * sizes["retain"]) / (
            sizes["forget"] + sizes["retain"]
        )
        seconds = (r["time_s"].get("original") or 0) + (r["time_s"].get("retrain") or 0)
        rows.append(
            (
                seed,
                pct(train_acc),
                pct(o["forget_acc"]),
                pct(t["forget_acc"]),
                pct(o["forget_acc"] - t["forget_acc"]),
                pct(o["test_acc"]),
                f"{seconds:.0f}",
            )
        )
    return markdown(header, rows, "r" * len(header)).splitlines()


def summaries(runs_dirs: list[Path], only_seeds: list[int] | None = None) -> list:
    """The report's aggregated settings for these runs (all seeds, or `only_seeds`)."""
    from unlearnbench.report.aggregate import aggregate, find_result_files, load_runs

    files, _ = find_result_files([str(d) for d in runs_dirs if d.exists()])
    runs, _ = load_runs(files)
    if only_seeds is not None:
        runs = [r for r in runs if r.seed in only_seeds]
    return aggregate(runs)


def report_markdown(runs_dirs: list[Path], only_seeds: list[int] | None = None) -> str:
    """The report's tables for these runs (all seeds, or `only_seeds`), without its title line."""
    from unlearnbench.report.render import render_markdown

    settings = summaries(runs_dirs, only_seeds)
    return render_markdown(settings).split("\n", 2)[2] if settings else "(no finished runs)\n"


def introduction(command: str, minutes: float, runs: dict[str, list[dict]]) -> list[str]:
    """The document's title, how it was made, and the setting's numbers."""
    random_runs, class_runs = runs["results_random"], runs["results_class"]
    environments = sorted({provenance.short(r["env"]) for r in random_runs + class_runs if "env" in r})
    return [
        "# Results: a benchmark where unlearning is measurable",
        "",
        f"Generated by `python scripts/results_table.py {command}` "
        f"({minutes:.0f} min this time); every run is `unlearn experiment={SETTING} "
        "method=<m> seed=<s> ...`, in the named sweeps `outputs/sweeps/results_*` (rerun to resume or extend).",
        "",
        f"- Ran on (each run's results.json `env`): {'; '.join(environments) or 'no finished runs'}.",
        f"- Setting (`conf/experiment/{SETTING}.yaml`): 10,000 CIFAR-10 training images (9,000 train, 1,000 val), "
        "the official 10,000 test images, a 3072-512-10 ReLU MLP trained 30 epochs without augmentation, so the "
        "original memorises its training set and Retrain's forget accuracy falls to test level.",
        "- Methods at their configs' defaults (the authors'); values are mean ± std over seeds in percent, the "
        "bracket the gap to Retrain of the same seed; Avg Gap over forget, retain, test accuracy and MIA-efficacy.",
        "",
        "## The setting's numbers (random 10 %: 900 forget images)",
        "",
        *setting_lines(random_runs),
        "",
    ]


def claims_section(runs: dict[str, list[dict]], ga_points: list[dict]) -> list[str]:
    """The seed papers' claims at the methods' defaults, per seed."""
    random_runs, class_runs = runs["results_random"], runs["results_class"]
    return [
        "## The seed papers' claims, per seed, at the methods' defaults",
        "",
        "Each claim is a difference paired by seed; its verdict compares the mean over seeds with its noise, "
        f"{K:g} standard errors from the seed std and the loss-MIA's subsample std "
        "(`unlearnbench/report/claims.py`): within it, the claim reads 'not distinguishable'.",
        "",
        "**IMU vs GA at matched forget accuracy** (IMU: ~30 % better utility than gradient ascent at the same "
        "forget accuracy; GA's curve over lr " + ", ".join(GA_CURVE_LR) + "):",
        "",
        *imu_claim(by(random_runs, method="imu"), ga_points, "random 10 %"),
        "",
        "**∇τ's loss-MIA closer to 50 % than GA's and FT's** (random 10 %):",
        "",
        *gradtau_claim(random_runs, "random 10 %"),
        "",
        "**Mnemonic, class 0: the forgotten class's test accuracy <= 1 % (the paper's E_F, on test images), "
        "remaining classes within 3 points of the original:**",
        "",
        *mnemonic_claim(by(class_runs, method="mnemonic"), "class 0"),
        "",
    ]


def tuning_curves(root: Path = ROOT) -> dict[str, list[tuple[float, float, float]]]:
    """Each tuned preset's coarse pass, as its file records it: method -> [(strength, forget acc, tune_gap)]."""
    presets = sorted((root / "conf" / "tuned" / SETTING).glob("*.yaml"))
    curves = {path.stem: read_curve(path) for path in presets}
    return {method: curve for method, curve in curves.items() if curve}


def tuned_section(runs: dict[str, list[dict]], ga_points: list[dict]) -> list[str]:
    """The tuned presets beside the defaults on the held-out seeds (nothing when no tuned run finished)."""
    tuned_random, tuned_class = runs.get("results_tuned_random", []), runs.get("results_tuned_class", [])
    if not (tuned_random or tuned_class):
        return []
    return [
        "## After tuning: the same budget for every method, seeds the tuning never saw",
        "",
        "Each method's hyperparameters were tuned by `python scripts/tune.py` (unlearnbench/sweeps/tuning.py: a coarse "
        "pass over the method's strength axis, its lr or noise scale over the whole declared range, then Optuna "
        "TPE around the best coarse point, conf/hparams_search/<method>.yaml; the same budget per method, seed 0 "
        "only) minimising tune_gap, the Avg Gap without "
        "the test split (forget, retain and validation accuracy and MIA-efficacy against D_val); each tuned "
        "file (conf/tuned/memorise_cifar10/) states its trials and objective value. Default and tuned rows below "
        f"are both on seeds {', '.join(map(str, HELD_OUT))}.",
        "",
        *imu_claim(by(tuned_random, method="imu"), ga_points, "tuned IMU vs default GA, random 10 %"),
        *gradtau_claim(tuned_random, "tuned ∇τ, GA, FT, random 10 %", "tuned "),
        *mnemonic_claim(by(tuned_class, method="mnemonic"), "tuned, class 0"),
        "",
        *(
            no_op_lines(tuned_random, "random 10 %", curves=tuning_curves())
            + no_op_lines(tuned_class, "class 0", curves=tuning_curves())
            or ["No tuned method keeps the original's forget accuracy within 1 point (no no-op)."]
        ),
        "",
        report_markdown(
            [SWEEPS / f"results_{part}" for part in ("random", "tuned_random", "class", "tuned_class")],
            HELD_OUT,
        ),
    ]


def document(runs: dict[str, list[dict]], command: str, minutes: float) -> str:
    """docs/results.md from the sweeps' finished runs."""
    from unlearnbench.report.deep import surface_section

    ga_points = runs["results_ga_curve"] + by(runs["results_random"], method="ga")
    defaults = [SWEEPS / "results_random", SWEEPS / "results_class"]
    doc = [
        *introduction(command, minutes, runs),
        *claims_section(runs, ga_points),
        *tuned_section(runs, ga_points),
        "## Good on outputs, not on representations (defaults, 3 seeds)",
        "",
        *surface_section(summaries(defaults)),
        "## Every method at its defaults, 3 seeds",
        "",
        report_markdown(defaults),
    ]
    return "\n".join(doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--parallel", type=int, default=1, help="jobs at once (joblib processes)")
    p.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--report-only", action="store_true", help="only re-read the finished runs")
    args = p.parse_args(argv)
    started = time.time()
    plan = sweeps(args.seeds)
    for name, overrides in [] if args.report_only else plan.items():
        run_sweep(name, overrides, args.data_dir, args.parallel)
    runs = {name: sweep_results(ROOT, name) for name in plan}
    command = " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.doc).write_text(document(runs, command, (time.time() - started) / 60))
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
