#!/usr/bin/env python
"""Speed benchmarks, measured side by side in one run (ratios, not absolute times, are the result).

Cases:
  train  Lightning training of the original model (the runner's path: GPU-resident TensorBatches,
         LitClassifier, Trainer) vs a plain PyTorch loop over the same device-resident tensors, same
         model, optimiser, augmentation, precision and memory format. Prints images/s and the ratio.
  imu    IMU influence scores: closed form vs per-sample autograd loop (scripts/bench_imu.py).
  lira   shadow-model metrics (LiRA, U-LiRA, challenge score): shadow models per minute (scripts/bench_lira.py).
  cli    the command's own wait: a cached default `unlearn` (every model from the cache) and `unlearn --help`,
         timed side by side with `python -c "import torch"` (the floor) in one run; goals 3.5 s and 1.5 s.
         Also a cached sweep's seconds per job (one process: the imports are paid once per sweep).
  all    every case with its defaults.

Examples:
  python scripts/benchmark.py train --dataset fashion_mnist --data-dir ../shared/data --device cuda
  python scripts/benchmark.py train --dataset cifar10_jpeg --data-dir ../shared/data --model resnet18 --device cuda
  python scripts/benchmark.py train --device cpu --model small_cnn --limit 4096
  python scripts/benchmark.py cli --repeats 5
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from unlearnbench import compose  # noqa: E402
from unlearnbench.config import build  # noqa: E402
from unlearnbench.data.batches import Augment, TensorBatches  # noqa: E402
from unlearnbench.report.sections import doc_markers, replace_section  # noqa: F401 (gpu_check, bench_lira)
from unlearnbench.runtime import Runtime  # noqa: E402
from unlearnbench.training.lightning import fit  # noqa: E402
from unlearnbench.training.recipe import build_optimizer  # noqa: E402


def _container(node):
    return OmegaConf.to_container(node, resolve=True)


def train_setup(overrides: list[str]) -> SimpleNamespace:
    """What the runner trains an original model with, for Hydra `overrides` (dataset, model, recipe,
    trainer): the whole training set on the device, augmentation, recipe, trainer config and runtime."""
    cfg = compose(
        ["logger=none", "trainer.enable_progress_bar=false", *overrides], output_dir=tempfile.gettempdir()
    )
    raw = build(cfg.dataset.source)
    trainer = _container(cfg.trainer)
    runtime = Runtime.from_cfg(trainer, _container(cfg.runtime))
    return SimpleNamespace(
        cfg=cfg,
        raw=raw,
        runtime=runtime,
        trainer=trainer,
        recipe=_container(cfg.recipe),
        augment=Augment(**_container(cfg.dataset.augment)),
        x=raw.train_x.to(runtime.device),
        y=raw.train_y.to(runtime.device),
    )


def new_model(setup: SimpleNamespace, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return setup.runtime.prepare(build(setup.cfg.model))


class ClockedBatches(TensorBatches):
    """TensorBatches that note when the first epoch starts, so throughput can leave out the set-up each
    path does once per training (Lightning: the Trainer and its hooks; both: building the optimiser)."""

    started: float | None = None

    def __iter__(self):
        if self.started is None:
            sync(self.x.device)
            self.started = time.perf_counter()
        return super().__iter__()


def train_batches(setup: SimpleNamespace, seed: int = 1) -> ClockedBatches:
    """The runner's training batches: device-resident uint8, augmented on the device."""
    return ClockedBatches(
        setup.x,
        setup.y,
        setup.recipe["batch_size"],
        shuffle=True,
        augment=setup.augment,
        seed=seed,
        channels_last=setup.runtime.channels_last,
    )


def lightning_train(setup: SimpleNamespace, batches, timings: dict | None = None) -> torch.nn.Module:
    """The runner's path: LitClassifier + Trainer (`fit`) over TensorBatches, compiled as the runner would
    compile this training (`runtime.compile`); `timings` receives its compile seconds."""
    steps = len(batches) * setup.recipe["epochs"]
    with tempfile.TemporaryDirectory(prefix="unlearnbench-bench-") as tmp:
        return fit(
            new_model(setup),
            batches,
            None,
            setup.recipe,
            setup.trainer,
            root_dir=tmp,
            compile=setup.runtime.compile_options(steps),
            timings=timings,
        )


def plain_train(setup: SimpleNamespace, batches, timings: dict | None = None) -> torch.nn.Module:
    """The hand-written reference: same batches, optimiser, schedule and autocast, no framework, no
    host synchronisation inside the epoch (eager: nothing compiled, so nothing goes to `timings`)."""
    model = new_model(setup).train()
    torch.backends.cudnn.benchmark = bool(setup.trainer.get("benchmark", False))  # as Lightning sets it
    opt, sched = build_optimizer(model.parameters(), setup.recipe)
    for _ in range(setup.recipe["epochs"]):
        for x, y in batches:
            with setup.runtime.autocast():
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_train(
    setup: SimpleNamespace, repeats: int = 2, paths: tuple[str, ...] = ("plain", "lightning")
) -> dict:
    """Images/s of each of `paths` (the plain loop, the Lightning runner), best of `repeats` (alternated,
    after one warm-up run of each for cuDNN autotuning, the allocator and compilation), and with both their
    ratio: from the first batch to the trained model, compilation left out (`*_img_s`, `ratio`; the runner's
    compile seconds are `lightning_compile_s`) and from the call, set-up included (`*_img_s_end_to_end`)."""
    train = {"plain": plain_train, "lightning": lightning_train}
    first: dict = {}  # the warm-up's: the first training pays the compilation
    for name in paths:
        train[name](setup, train_batches(setup), first)
    times = {name: ([], []) for name in paths}
    for _ in range(repeats):
        for name in paths:
            batches, timings = train_batches(setup), {}
            sync(setup.runtime.device)
            start = time.perf_counter()
            train[name](setup, batches, timings)
            sync(setup.runtime.device)
            end = time.perf_counter()
            times[name][0].append(end - batches.started - timings.get("compile_s", 0.0))
            times[name][1].append(end - start)
    images = len(setup.y) * setup.recipe["epochs"]
    out = {"images": images}
    for name, (training, total) in times.items():
        out[f"{name}_img_s"], out[f"{name}_img_s_end_to_end"] = images / min(training), images / min(total)
    if "compile_s" in first:
        out["lightning_compile_s"] = first["compile_s"]
    if set(paths) == {"plain", "lightning"}:
        out["ratio"] = out["lightning_img_s"] / out["plain_img_s"]
        out["ratio_end_to_end"] = out["lightning_img_s_end_to_end"] / out["plain_img_s_end_to_end"]
    return out


def train_flops_per_image(setup: SimpleNamespace) -> float:
    """Model FLOPs of one training step (forward + backward) per image, counted by torch on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = new_model(setup).train()
    x, y = next(iter(train_batches(setup)))
    with FlopCounterMode(display=False) as counter:
        with setup.runtime.autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
    return counter.get_total_flops() / len(y)


def bench_train(args) -> dict:
    overrides = [
        f"dataset={args.dataset}",
        f"model={args.model}",
        f"recipe.epochs={args.epochs}",
        f"recipe.batch_size={args.batch_size}",
        f"paths.data_dir={args.data_dir}",
    ]
    if args.device != "auto":
        overrides.append(f"trainer={'gpu' if args.device == 'cuda' else 'cpu'}")
    setup = train_setup(overrides)
    if args.limit:
        setup.x, setup.y = setup.x[: args.limit], setup.y[: args.limit]
    result = measure_train(setup, args.repeats)
    tflops = train_flops_per_image(setup) * result["lightning_img_s"] / 1e12
    device = setup.runtime.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"\n## train: {args.model} on {args.dataset} ({len(setup.y)} images x {args.epochs} epochs, batch "
        f"{args.batch_size}, {setup.runtime.precision}, device {name}, best of {args.repeats})\n"
    )
    print("| path | images/s from the first batch | images/s with set-up |\n|---|---:|---:|")
    print(f"| plain PyTorch loop | {result['plain_img_s']:.0f} | {result['plain_img_s_end_to_end']:.0f} |")
    print(
        f"| unlearnbench Lightning runner | {result['lightning_img_s']:.0f} | "
        f"{result['lightning_img_s_end_to_end']:.0f} |"
    )
    print(
        f"\nratio lightning / plain = {result['ratio']:.3f} ({result['ratio_end_to_end']:.3f} with set-up); "
        f"Lightning runner {tflops:.3g} TFLOP/s of model FLOPs"
    )
    return result


def _seconds(command: list[str], cwd: str, env: dict, stdout: list | None = None) -> float:
    import subprocess

    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    if stdout is not None:
        stdout.append(done.stdout)
    return time.perf_counter() - start


# What a cached default run cannot avoid importing: torch, scikit-learn (the default MIAs: SVC for MIA-efficacy,
# logistic regression for MIA-loss and MIA-entropy; unlearnbench/metrics/attacks.py) and Hydra. Not
# torch._dynamo, which a process's first torch.optim optimiser imports (~1.5 s): the methods' SGD does not use
# torch.optim (methods/common.py).
RUN_IMPORTS = "import torch, sklearn.svm, sklearn.linear_model, sklearn.metrics, sklearn.model_selection, hydra, omegaconf"


SWEEP_JOBS = 5
SWEEP_ROW = f"unlearn -m seed=0,...,{SWEEP_JOBS - 1} (cached), per job"


def bench_cli(args) -> dict:
    """Median wall seconds of a cached default `unlearn`, `unlearn --help` and `import torch`, interleaved."""
    import os
    import statistics

    unlearn = str(Path(sys.executable).parent / "unlearn")
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        env = {**os.environ, "UNLEARN_CACHE": f"{tmp}/cache", "WANDB_MODE": "offline"}
        env.pop("PYTHONPATH", None)
        first = _seconds([unlearn], tmp, env)  # trains the original and Retrain: fills the cache
        # A sweep runs its jobs in one process (Hydra's basic launcher): the imports are paid once.
        sweep = [unlearn, "-m", f"seed={','.join(map(str, range(SWEEP_JOBS)))}"]
        _seconds(sweep, tmp, env)  # trains every seed's original and Retrain
        times: dict[str, list[float]] = {
            "import torch": [],
            RUN_IMPORTS: [],
            "unlearn (cached)": [],
            "unlearn --help": [],
            SWEEP_ROW: [],
        }
        outputs: list[str] = []
        for _ in range(args.repeats):  # interleaved, so machine load hits every command alike
            times["import torch"].append(_seconds([sys.executable, "-c", "import torch"], tmp, env))
            times[RUN_IMPORTS].append(_seconds([sys.executable, "-c", RUN_IMPORTS], tmp, env))
            times["unlearn (cached)"].append(_seconds([unlearn], tmp, env, outputs))
            times["unlearn --help"].append(_seconds([unlearn, "--help"], tmp, env))
            times[SWEEP_ROW].append(_seconds(sweep, tmp, env) / SWEEP_JOBS)
    median = {k: statistics.median(v) for k, v in times.items()}
    # The run's own "total" (set-up, method, evaluation; no imports), from its summary line.
    work = statistics.median(float(m.group(1)) for o in outputs if (m := re.search(r"total ([0-9.]+)s", o)))
    goals = {"unlearn (cached)": 3.5, "unlearn --help": 1.5}
    lines = [
        f"`python scripts/benchmark.py cli --repeats {args.repeats}`: {args.repeats} interleaved repeats, median "
        f"wall seconds, {os.cpu_count()} CPU cores, torch {torch.__version__} (first, uncached run, which trains "
        f"the original and Retrain: {first:.1f} s; load average before/after: {load_before} / "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})",
        "",
        "| command | seconds | vs import torch | goal |",
        "|---|---:|---:|---|",
    ]
    for name, value in median.items():
        goal = (
            f"<= {goals[name]} s: {'met' if value <= goals[name] else 'NOT met'}"
            if name in goals
            else "floor"
            if name in ("import torch", RUN_IMPORTS)
            else ""
        )
        lines.append(f"| `{name}` | {value:.2f} | {value / median['import torch']:.2f}x | {goal} |")
    rest = median["unlearn (cached)"] - median[RUN_IMPORTS]
    lines += [
        "",
        f"The imports a cached run cannot avoid (`{RUN_IMPORTS}`) take {median[RUN_IMPORTS]:.2f} s of the "
        f"cached run's {median['unlearn (cached)']:.2f} s; the other {rest:.2f} s compose the config, load the "
        f"cached models and data, run the method and evaluate (the run's own summary line says `total {work:.1f}s`, "
        "which counts the imports made inside the run: scikit-learn's).",
        "",
        f"A sweep pays the imports once: its {SWEEP_JOBS} cached default jobs (one per seed) take "
        f"{median[SWEEP_ROW]:.2f} s each, the sweep's wall time divided by its jobs.",
    ]
    print("\n" + "\n".join(lines))
    if args.doc:
        replace_section(
            Path(args.doc), "cli", "\n".join(["## The command's own wait (`unlearn`, cached)", "", *lines])
        )
        print(f"wrote the cli section of {args.doc}")
    return {"median_s": median, "first_s": first}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="case", required=True)
    train = sub.add_parser("train", help="Lightning runner vs plain loop, images/s")
    train.add_argument(
        "--dataset",
        choices=["digits", "synthetic", "fashion_mnist", "cifar10", "cifar10_jpeg"],
        default="digits",
    )
    train.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    train.add_argument("--model", choices=["resnet18", "small_cnn"], default="small_cnn")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train.add_argument("--epochs", type=int, default=2)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    train.add_argument("--repeats", type=int, default=2)
    sub.add_parser("imu", help="IMU influence: closed form vs per-sample loop", add_help=False)
    sub.add_parser("lira", help="shadow models per minute for eval=full", add_help=False)
    cli = sub.add_parser("cli", help="cached default unlearn and --help vs import torch, seconds")
    cli.add_argument("--repeats", type=int, default=5)
    cli.add_argument("--doc", help="write the table into this markdown file (between <!-- cli:start/end -->)")
    sub.add_parser("all", help="every case with its defaults")
    args, rest = parser.parse_known_args(argv)
    if args.case == "train":
        bench_train(args)
    elif args.case == "imu":
        import bench_imu

        bench_imu.main(rest)
    elif args.case == "cli":
        bench_cli(args)
    elif args.case == "lira":
        import bench_lira

        bench_lira.main(rest)
    else:
        bench_train(parser.parse_args(["train"]))
        import bench_imu

        bench_imu.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
