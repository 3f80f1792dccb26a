#!/usr/bin/env python
"""Reproduce the method comparison in docs/results.md (Fashion-MNIST, random 10% and class-0 forgetting).

Every (seed, scenario, method) is one `unlearn` run through the library entry `run(cfg)`, with the
real configs composed by Hydra; finished runs are skipped, so the script resumes where it stopped.
The original and Retrain models of a seed are trained once and shared through the model cache.
Then the report tool aggregates mean ± std over seeds into docs/results.md.

  python scripts/results_table.py --data-dir ../shared/data                 # everything, 3 seeds
  python scripts/results_table.py --seeds 0 --methods ft ga imu             # a subset
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED_METHODS = ["none", "retrain", "ft", "ga", "imu", "gradtau", "mnemonic"]
BASELINES = ["neggrad_plus", "random_label", "l1_sparse", "salun", "scrub", "ssd", "bad_teacher", "fisher",
             "boundary_shrink"]
SCENARIOS = {"random": ["forget=random", "forget_ratio=0.1"], "class": ["forget=class", "forget.classes=[0]"]}
# A CPU-sized model: the published tables use ResNet-18 on a GPU; on 2 CPU cores an MLP keeps a full
# 3-seed sweep within hours. Pass --model resnet18 --trainer gpu on a GPU machine.
MODEL = {"mlp": ["model=mlp", "model.hidden=[512]", "model.activation=relu"],
         "small_cnn": ["model=small_cnn"], "resnet18": ["model=resnet18"]}


# The Mnemonic paper's own MNIST setting (Yamashita et al., ACML 2024): MLP 784-1000(sigmoid)-10, t_mix 0.1,
# lambda2 10, at the authors' lambda1 (1e-3) and at half of it. Class 0, the same Fashion-MNIST splits.
MNEMONIC_PAPER_MODEL = ["model=mlp", "model.hidden=[1000]", "model.activation=sigmoid"]
MNEMONIC_PAPER_METHOD = ["method=mnemonic", "method.t_mix=0.1", "method.lambda2=10"]
MNEMONIC_PAPER_LAMBDA1 = {"1e-3": "authors' MNIST value", "5e-4": "half of it"}


def claim_lines(folder: Path) -> list[str]:
    """The paper's class-wise claim (forget acc <= 1%, remaining test acc within 3 points), checked per seed."""
    import json

    lines = []
    for path in sorted(folder.glob("seed*/results.json")):
        r = json.loads(path.read_text())
        forget, drop = 100 * r["metrics"]["forget_acc"], 100 * (r["original"]["metrics"]["test_acc"] - r["metrics"]["test_acc"])
        ok = forget <= 1.0 and drop <= 3.0
        lines.append(f"- seed {r['seed']}: forget accuracy {forget:.1f}%, remaining-class test accuracy "
                     f"{'down' if drop >= 0 else 'up'} {abs(drop):.1f} points from the original -> "
                     f"{'met' if ok else 'NOT met'}")
    return lines


def mnemonic_check(main_folder: Path, paper_folder: Path) -> str:
    lines = ["## Mnemonic claim check (class 0)\n",
             "The paper reports forget accuracy <= 1% with remaining test accuracy within 3 points of the "
             "original (CIFAR-10, MNIST). Checked per seed against the code-trained original of the same run.\n",
             "**In the table below** (the MLP above, the method's defaults = the authors' CIFAR-10 / ResNet-18 "
             "values t_mix 0.3, lambda1 1e-5, lambda2 1e4):\n", *claim_lines(main_folder),
             "\nThe step per tensor is min(lambda1, lambda2 / max r) x r, with r the Fisher ratio on the codes, so "
             "the right lambdas depend on the model's ratios and do not transfer between architectures; the sign is "
             "chosen on the codes alone, so a step that ruins real data can still look best on the codes.\n",
             f"**In the paper's MNIST setting** (`{' '.join(MNEMONIC_PAPER_MODEL + MNEMONIC_PAPER_METHOD)} "
             "method.lambda1=<v>`, same data, splits and seeds; the original is trained with the codes as above):\n"]
    for value, what in MNEMONIC_PAPER_LAMBDA1.items():
        found = claim_lines(paper_folder / f"lambda1_{value}")
        if found:
            lines += [f"lambda1 = {value} ({what}):\n", *found, ""]
    lines.append("The step that erases class 0 also moves the other classes, by an amount set by lambda1 (compare "
                 "the two values above); the authors' value was chosen on MNIST, not on Fashion-MNIST.")
    return "\n".join(lines) + "\n\n"


def run_once(run, run_dir: Path, overrides: list[str], label: str, started: float) -> None:
    """One `unlearn` run into `run_dir`, unless it finished before; a failed run is reported, not raised."""
    from unlearnbench import compose
    from unlearnbench.errors import UserError

    if (run_dir / "results.json").exists():
        return
    print(f"[results_table] {label} ({time.time() - started:.0f}s)", flush=True)
    try:
        run(compose(overrides, output_dir=run_dir))
    except UserError as err:  # e.g. a class-wise method on random forgetting: not a row
        print(f"[results_table] skipped: {err}", flush=True)
    except Exception as err:  # one broken run must not stop the table; it is reported
        print(f"[results_table] FAILED {label}: {err!r}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--methods", nargs="+", default=SEED_METHODS + BASELINES)
    p.add_argument("--model", default="mlp", choices=list(MODEL))
    p.add_argument("--epochs", type=int, default=10, help="original / Retrain training epochs")
    p.add_argument("--trainer", default="cpu")
    p.add_argument("--out", default=str(ROOT / "outputs" / "results_table"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--report-only", action="store_true", help="only aggregate the finished runs")
    args = p.parse_args(argv)

    from unlearnbench import run
    from unlearnbench.report.cli import report

    out = Path(args.out)
    base = ["dataset=fashion_mnist", f"paths.data_dir={args.data_dir}", f"recipe.epochs={args.epochs}",
            f"trainer={args.trainer}", "trainer.enable_progress_bar=false", "logger=none", "eval=standard",
            f"paths.cache_dir={out / 'cache'}"]
    common = [*base, *MODEL[args.model], "eval.retrain=true"]
    started = time.time()
    for seed in [] if args.report_only else args.seeds:
        for scenario in args.scenarios:
            for method in args.methods:
                run_once(run, out / "runs" / scenario / method / f"seed{seed}",
                         [*common, *SCENARIOS[scenario], f"method={method}", f"seed={seed}"],
                         f"seed {seed} {scenario} {method}", started)
        if "class" in args.scenarios and "mnemonic" in args.methods:
            # No Retrain here: the claim compares with the (code-trained) original.
            for value in MNEMONIC_PAPER_LAMBDA1:
                run_once(run, out / "mnemonic_paper_setting" / f"lambda1_{value}" / f"seed{seed}",
                         [*base, *MNEMONIC_PAPER_MODEL, "eval.retrain=false", *SCENARIOS["class"],
                          *MNEMONIC_PAPER_METHOD, f"method.lambda1={value}", f"seed={seed}"],
                         f"seed {seed} class mnemonic, paper setting, lambda1 {value}", started)

    written = report([str(out / "runs")], out=str(out))
    body = next(p for p in written if p.name == "report.md").read_text()
    import torch

    header = f"""# Results: Fashion-MNIST, random 10% and class-0 forgetting

Generated by `python scripts/results_table.py {' '.join(argv if argv is not None else sys.argv[1:])}`
(every run: `unlearn {' '.join([*base[:2], *MODEL[args.model]])} ... method=<m> seed=<s>`; rerun the script to reproduce or extend).

- Hardware: {platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, no GPU; torch {torch.__version__}.
- Model: `{args.model}` ({' '.join(MODEL[args.model])}), original and Retrain trained {args.epochs} epochs with the
  dataset recipe (SGD, cosine); methods use their configs' defaults (the authors').
- Values: mean ± std over the seeds present, in percent; in brackets the gap to Retrain of the same seed.

"""
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    check = mnemonic_check(out / "runs" / "class" / "mnemonic", out / "mnemonic_paper_setting")
    Path(args.doc).write_text(header + check + body)
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
