#!/usr/bin/env python
"""One prepared GPU check: every speed and accuracy goal of the project, measured in one run.

    python scripts/gpu_check.py --data-dir DATA                      # the check (<= 8 min on an H100)
    python scripts/gpu_check.py --device cpu --tiny --json J --doc D  # the same code paths in seconds
    python scripts/gpu_check.py --steps A B --keep EARLIER.json      # rerun steps A, B; keep the others
    python scripts/gpu_check.py --from-json RUN.json --steps A --keep EARLIER.json   # write, run nothing

DATA holds FashionMNIST/raw (the four idx files) and cifar10-jpeg.tar.gz (or cifar-10-batches-py/).
The steps (STEPS, at the bottom) run in sequence, each under its own time budget (SIGALRM) and all
under --budget; a step that fails or runs out of time is recorded as such and the next one runs.
After every step the JSON (--json) and the doc section between the gpu-check markers of --doc
(default: docs/benchmarks.md, not with --tiny) are rewritten, so a run cut short keeps what it measured.
Every figure is written next to its goal with met / not met.

On a machine lent by the `device` tool (no internet, Python 3.12 with torch and Lightning but no Hydra):
`bash scripts/gpu_session.sh prepare` here, then there `bash scripts/gpu_session.sh run` with
carry ["outputs/gpu_carry"] and timeout_s 600; scripts/gpu_session.sh says what travels and why.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_imu
import bench_lira
import benchmark
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.loggers.logger import Logger

from unlearnbench import compose, run
from unlearnbench.config import validate
from unlearnbench.data.batches import TensorBatches
from unlearnbench.data.splits import Split
from unlearnbench.evaluation import predict
from unlearnbench.metrics.accuracy import accuracy
from unlearnbench.protocols import PROTOCOLS
from unlearnbench.runner import Pipeline, prepare_data
from unlearnbench.training.lightning import fit

START, END = benchmark.doc_markers("gpu-check")

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's H100 / H200 / A100 datasheets (their
# "with sparsity" figures halved). First match in the device name wins, so the specific names come first.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
)

# What each step runs. "gpu" is the check; "tiny" runs the same code on tiny data in seconds on a CPU.
SETTINGS = {
    "gpu": {
        "fmnist": ["dataset=fashion_mnist", "dataset.download=false", "model=resnet18"],
        "cifar": ["model=resnet18"],  # + the CIFAR-10 dataset found in --data-dir
        # The runner compiled, as a paper-length training is (runtime.compile=auto compiles >= 2000 steps).
        "train": ["recipe.epochs=2", "recipe.batch_size=256", "runtime.compile=true"],
        "accuracy": [
            "recipe=mnist_fast"
        ],  # Fashion-MNIST to 93.5 % in 10 epochs (conf/recipe/mnist_fast.yaml)
        # IMU's influence in float32 (the exactness check), then as the runner runs it: bf16, batches of 2048.
        "imu_bench": ["--samples", "10000", "--loop-samples", "512", "--model", "resnet18"],
        "imu_bench_runner": ["--precision", "bf16", "--allow-tf32", "--batch-size", "2048"],
        # 4 shadows (12 trainings, 8 unlearning runs): stacked ResNet-18 groups run grouped convolutions,
        # whose speed is unknown here, so the step stays well inside its budget.
        "shadows": ["--method", "imu", "--num-shadows", "4", "--model", "resnet18", "--epochs", "1"],
        # The CPU case of scripts/benchmark.py lira (docs/benchmarks.md), sequential and batched.
        "small_shadows": [
            "--num-shadows",
            "16",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--method",
            "ga",
            "--method-epochs",
            "1",
            "model.hidden=[512]",
            "model.activation=relu",
        ],
        "mission": ["recipe.epochs=3"],
        "repeats": 5,
    },
    "tiny": {
        "fmnist": ["dataset=digits", "model=small_cnn"],
        "cifar": ["dataset=synthetic", "model=small_cnn"],
        "train": [
            "recipe.epochs=1",
            "recipe.batch_size=256",
            "runtime.compile=true",
            "runtime.compile_backend=eager",
        ],
        "accuracy": ["recipe=mnist_fast", "recipe.epochs=1"],
        "imu_bench": ["--samples", "64", "--loop-samples", "4", "--model", "small_cnn", "--repeats", "1"],
        "imu_bench_runner": ["--precision", "bf16", "--batch-size", "32"],
        "shadows": ["--method", "imu", "--num-shadows", "2", "--model", "small_cnn", "--epochs", "1"],
        "small_shadows": ["--num-shadows", "2", "--model", "mlp", "--epochs", "1", "--method", "ga"],
        "mission": ["recipe.epochs=1"],
        "repeats": 1,
    },
}


def bf16_peak(device_name: str) -> tuple[float | None, str]:
    """(dense bf16 peak TFLOP/s, where it comes from), or (None, why there is none)."""
    for key, peak in BF16_PEAK_TFLOPS:
        if key in device_name:
            return peak, f"{key}: {peak:g} TFLOP/s bf16 dense (NVIDIA datasheet)"
    return None, f"no bf16 dense peak known for device '{device_name}'"


@dataclass(frozen=True)
class Goal:
    key: str  # the step's figure it judges
    what: str
    op: str  # ">=", "<=", "true" (a yes/no figure) or "report" (a figure shown with no goal: a baseline)
    target: float = 0.0
    fmt: str = "{:,.3g}"

    def text(self) -> str:
        if self.op == "report":
            return "(baseline)"
        return "yes" if self.op == "true" else f"{self.op} {self.fmt.format(self.target)}"

    def judge(self, figures: dict) -> dict:
        value = figures.get(self.key)
        if value is None:
            status = "not measured"
        elif self.op == "report":
            status = "reported"
        elif self.op == "true":
            status = "met" if value is True else "not met"
        else:
            status = (
                "met" if (value >= self.target if self.op == ">=" else value <= self.target) else "not met"
            )
        shown = (
            None
            if value is None
            else ("yes" if value else "no")
            if self.op == "true"
            else self.fmt.format(value)
        )
        return {
            "key": self.key,
            "what": self.what,
            "value": value,
            "shown": shown,
            "goal": self.text(),
            "status": status,
            "note": figures.get(f"{self.key}_note"),
        }


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    budget_s: float  # its share of the 8 minutes on an H100
    fn: Callable[[Check], dict]
    goals: tuple[Goal, ...]


class StepTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """Raise StepTimeout in this (main) thread once `seconds` have passed."""

    def expire(signum, frame):
        raise StepTimeout(f"ran past its budget of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Check:
    """What every step shares: arguments, device, settings and a working folder."""

    args: argparse.Namespace
    device: torch.device
    work: Path
    scratch: list[Path] = field(default_factory=list)  # this step's folders, removed after it
    measured: dict = field(default_factory=dict)  # figures later steps build on (baselines, rates)

    @property
    def setting(self) -> dict:
        return SETTINGS["tiny" if self.args.tiny else "gpu"]

    @property
    def repeats(self) -> int:
        return self.setting["repeats"]

    def dataset(self, role: str) -> list[str]:
        """Hydra overrides naming the dataset and model of `role` ("fmnist" or "cifar")."""
        overrides = list(self.setting[role])
        if role == "cifar" and not self.args.tiny:
            official = (Path(self.args.data_dir) / "cifar-10-batches-py").is_dir()
            overrides.append("dataset=cifar10" if official else "dataset=cifar10_jpeg")
            if not official:  # decoded once, kept across runs (the model caches are fresh per step)
                overrides.append(f"dataset.source.cache_dir={self.work / 'datasets'}")
        return overrides

    def common(self, cache_dir: Path, trainer: str | None = None) -> list[str]:
        """Overrides every step shares; the trainer is the check's device unless `trainer` names one."""
        return [
            f"trainer={trainer or ('gpu' if self.device.type == 'cuda' else 'cpu')}",
            "trainer.enable_progress_bar=false",
            "logger=none",
            f"paths.data_dir={Path(self.args.data_dir).resolve()}",
            f"paths.cache_dir={cache_dir}",
        ]

    def fresh_dir(self) -> Path:
        self.scratch.append(Path(tempfile.mkdtemp(prefix="step-", dir=self.work)))
        return self.scratch[-1]


sync = benchmark.sync


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall seconds of `fn` over `repeats` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_setup(check: Check, role: str, extra: list[str]):
    """benchmark.train_setup for `role`, timed (the first CIFAR-10 JPEG load decodes the archive)."""
    start = time.perf_counter()
    setup = benchmark.train_setup([*check.common(check.fresh_dir()), *check.dataset(role), *extra])
    return setup, time.perf_counter() - start


def run_setup(check: Check, overrides: list[str]) -> tuple[Pipeline, object]:
    """(pipeline, method) as `unlearnbench.runner.run` builds them: splits on the device, fresh cache."""
    cache = check.fresh_dir()
    cfg = compose([*check.common(cache), *overrides], output_dir=cache / "run")
    scenario, method = validate(cfg)
    _, splits, runtime = prepare_data(cfg, scenario)
    return Pipeline(cfg, splits, runtime, None), method


# ---------------------------------------------------------------------------------------------------
# The steps: each returns its figures (a flat dict; "setup" says what ran).
# ---------------------------------------------------------------------------------------------------


def eager_loop(check: Check, role: str) -> dict:
    """The fixed baseline: a hand-written eager loop (same model, batches, augmentation, precision and
    channels_last as the runner; no compile, no CUDA graphs, no framework), images/s."""
    setup, load_s = train_setup(check, role, check.setting["train"])
    repeats = min(check.repeats, 2)
    r = benchmark.measure_train(setup, repeats, paths=("plain",))
    check.measured[f"eager_{role}"] = r["plain_img_s"]
    rt = setup.runtime
    return {
        "img_s": r["plain_img_s"],
        "img_s_end_to_end": r["plain_img_s_end_to_end"],
        "load_s": load_s,
        "setup": (
            f"{setup.cfg.dataset.name} / {setup.cfg.model.name}, {len(setup.y):,} images x "
            f"{setup.recipe['epochs']} epochs, batch {setup.recipe['batch_size']}, {rt.precision}, "
            f"channels_last {rt.channels_last}, eager; best of {repeats} after a warm-up, timed from the first "
            f"batch to the trained model"
        ),
    }


def training_speed(check: Check, role: str) -> dict:
    """The Lightning runner (`fit` on TensorBatches, compiled as a long training is) vs the eager loop's
    rate measured by the step before; FLOPs and MFU."""
    setup, load_s = train_setup(check, role, check.setting["train"])
    repeats = min(check.repeats, 2)
    r = benchmark.measure_train(setup, repeats, paths=("lightning",))
    runner = r["lightning_img_s"]
    check.measured[f"runner_{role}"] = runner
    check.measured[f"compile_{role}"] = r.get("lightning_compile_s")
    eager = check.measured.get(f"eager_{role}")
    flops = benchmark.train_flops_per_image(setup)
    rt = setup.runtime
    peak, source = bf16_peak(check.args.device_name)
    tflops = flops * runner / 1e12
    mfu = tflops / peak if peak and rt.precision.startswith("bf16") else None
    compile_options = rt.compile_options(1 << 30)
    return {
        "img_s": runner,
        "img_s_end_to_end": r["lightning_img_s_end_to_end"],
        "compile_s": r.get("lightning_compile_s"),
        "ratio": runner / eager if eager else None,
        "ratio_note": (
            f"runner {runner:,.0f} vs eager loop {eager:,.0f} img/s"
            if eager
            else "no eager loop rate measured"
        ),
        "load_s": load_s,
        "gflop_per_image": flops / 1e9,
        "tflops": tflops,
        "peak_tflops": peak,
        "mfu": mfu,
        "img_s_note": (
            f"MFU {mfu:.1%} ({tflops:.3g} TFLOP/s at {flops / 1e9:.3g} GFLOP per image)"
            if mfu is not None
            else source
            if peak is None
            else f"precision {rt.precision}, not bf16"
        ),
        "setup": (
            f"{setup.cfg.dataset.name} / {setup.cfg.model.name}, {len(setup.y):,} images x "
            f"{setup.recipe['epochs']} epochs, batch {setup.recipe['batch_size']}, {rt.precision}, "
            f"channels_last {rt.channels_last}, torch.compile {compile_options} (compilation "
            f"{r.get('lightning_compile_s') or 0:.1f} s, reported apart and left out of the rate); best of "
            f"{repeats} after a warm-up, timed from the first batch to the trained model; model FLOPs of one "
            f"forward + backward batch by torch.utils.flop_counter; peak {source}"
        ),
    }


class EpochLog(Logger):
    """Collects the per-epoch accuracy that LitClassifier logs on its validation batches (here: test)."""

    name, version = "gpu_check", 0

    def __init__(self):
        super().__init__()
        self.start, self.rows = time.perf_counter(), []

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if "original/val_acc" in metrics:
            seconds = time.perf_counter() - self.start
            self.rows.append((round(seconds, 2), round(float(metrics["original/val_acc"]), 4)))


def time_to_accuracy(check: Check) -> dict:
    """Fashion-MNIST ResNet-18 trained with the runner's `fit` on all 60k training images: wall seconds
    (model creation to trained model, test accuracy logged after each epoch included) and test accuracy."""
    setup, _ = train_setup(check, "fmnist", check.setting["accuracy"])
    rt, raw = setup.runtime, setup.raw
    test = Split("test", raw.test_x.to(rt.device), raw.test_y.to(rt.device), torch.arange(len(raw.test_y)))
    test_batches = TensorBatches(test.x, test.y, rt.eval_batch_size, channels_last=rt.channels_last)
    log = EpochLog()
    with tempfile.TemporaryDirectory(dir=check.work) as tmp:
        sync(rt.device)
        start = log.start = time.perf_counter()
        model = fit(
            benchmark.new_model(setup),
            benchmark.train_batches(setup),
            test_batches,
            setup.recipe,
            setup.trainer,
            logger=log,
            root_dir=tmp,
        )
        sync(rt.device)
        seconds = time.perf_counter() - start
    out = predict(model.to(rt.device), test, rt)  # Lightning's teardown hands the model back on the CPU
    acc = float(accuracy(out.logits, out.labels))
    reached = next((t for t, a in log.rows if a >= 0.935), None)
    recipe = setup.recipe
    opt = {k: v for k, v in recipe["optimizer"].items() if not k.startswith("_")}
    return {
        "seconds": seconds,
        "test_acc": acc,
        "per_epoch": log.rows,
        "first_reached_s": reached,
        "setup": (
            f"{setup.cfg.dataset.name} / {setup.cfg.model.name}, all {len(setup.y):,} training images, "
            f"recipe: {recipe['epochs']} epochs, batch {recipe['batch_size']}, SGD {opt}, "
            f"{(recipe.get('scheduler') or {}).get('_target_', 'constant').rsplit('.', 1)[-1]} per "
            f"{recipe.get('scheduler_interval', 'epoch')}, label smoothing {recipe.get('label_smoothing', 0)}, "
            f"augmentation {OmegaConf.to_container(setup.cfg.dataset.augment)}, {rt.precision}, "
            f"channels_last {rt.channels_last}; test accuracy per epoch (s, acc): {log.rows}"
        ),
    }


def imu_influence(check: Check) -> dict:
    """scripts/bench_imu.py: closed-form influence vs the authors' per-sample backward loop, first in exact
    float32 (their agreement), then as the runner runs IMU (bf16 autocast, TF32, its batch size): the speed-up."""
    argv = ["--device", check.device.type, *check.setting["imu_bench"]]
    if not check.args.tiny:
        argv += ["--data-dir", str(check.args.data_dir)]
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        exact = bench_imu.measure(bench_imu.parse_args(argv))
        args = bench_imu.parse_args([*argv, *check.setting["imu_bench_runner"]])
        r = bench_imu.measure(args)
    finally:  # bench_imu sets TF32 for its own run; the later steps run as the runner does
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return {
        "speedup": r["speedup"],
        "closed_form_per_s": r["rates"]["closed_form"],
        "loop_per_s": r["rates"]["loop"],
        "fp32_speedup": exact["speedup"],
        "max_rel_diff": exact["max_rel_diff"],
        "speedup_note": (
            f"{r['rates']['closed_form']:,.0f} vs {r['rates']['loop']:,.1f} samples/s; "
            f"float32: {exact['speedup']:,.0f}x"
        ),
        "max_rel_diff_note": f"float32, TF32 off, on {exact['loop_samples']} samples",
        "setup": (
            f"{args.model}, {args.samples} samples by the closed form, {r['loop_samples']} by the loop "
            f"(rates per sample), median of {args.repeats}; speed-up in {args.precision} autocast with TF32 "
            f"{'on' if args.allow_tf32 else 'off'}, closed-form batches of {args.batch_size}; exactness in "
            f"float32 with TF32 off: closed form vs loop max |diff| / max |I| = {exact['max_rel_diff']:.2e} "
            f"({exact['speedup']:,.0f}x there)"
        ),
    }


# IMU's fast path: the backbone is a fixed function, so its features of D_f are computed once.
IMU_FAST_PATH = ["method=imu", "method.update_scope=fc", "method.bn_mode=eval", "method.augment=false"]


def imu_stage(check: Check) -> dict:
    """The whole IMU unlearning stage on the fast path vs one forward pass (`predict`) over D_f."""
    pipe, method = run_setup(check, [*check.dataset("fmnist"), *IMU_FAST_PATH])
    rt, splits = pipe.runtime, pipe.splits
    model = rt.prepare(pipe.new_model()).eval()  # untrained weights: the stage's cost does not depend on them
    # Pipeline.unlearn times the method alone (not its copy of the model), as the runner reports it.
    t_imu = statistics.median(
        [pipe.unlearn(method, model, splits, 0, {}, "imu")[1] for _ in range(check.repeats + 1)][1:]
    )
    t_fwd = median_seconds(lambda: predict(model, splits.forget, rt), rt.device, check.repeats)
    return {
        "ratio": t_imu / t_fwd,
        "imu_s": t_imu,
        "forward_s": t_fwd,
        "ratio_note": f"{t_imu * 1e3:.1f} ms vs {t_fwd * 1e3:.1f} ms",
        "setup": (
            f"{pipe.cfg.dataset.name} / {pipe.cfg.model.name}, D_f = {len(splits.forget):,} images, "
            f"{' '.join(IMU_FAST_PATH)} (feature cache: {method.uses_feature_cache()}), "
            f"{rt.precision}, median of {check.repeats} after a warm-up; forward pass = the project's "
            f"`predict` (batches of {rt.eval_batch_size})"
        ),
    }


def inference(check: Check) -> dict:
    """Evaluation inference: the project's `predict` over the whole training set, images/s."""
    setup, _ = train_setup(check, "fmnist", [])
    rt = setup.runtime
    split = Split("train", setup.x, setup.y, torch.arange(len(setup.y)))
    model = benchmark.new_model(setup).eval()
    seconds = median_seconds(lambda: predict(model, split, rt), rt.device, check.repeats)
    return {
        "img_s": len(split) / seconds,
        "img_s_note": f"{len(split):,} images in {seconds * 1e3:.1f} ms",
        "setup": (
            f"{setup.cfg.dataset.name} / {setup.cfg.model.name}, {len(split):,} images on the device, "
            f"batches of {rt.eval_batch_size}, {rt.precision}, channels_last {rt.channels_last}, logits "
            f"copied to the host per batch (as `predict` does), median of {check.repeats}"
        ),
    }


def shadow_args(check: Check, setting: str = "shadows") -> list[str]:
    """scripts/bench_lira.py's arguments for the SETTINGS entry `setting` (default: the ResNet-18 shadows of
    the mission's method)."""
    dataset = (
        ["--dataset", "synthetic"]
        if check.args.tiny
        else ["--dataset", "fashion_mnist", "--data-dir", str(check.args.data_dir)]
    )
    # The SVC attacks (mia_efficacy, its D_val twin) cost CPU time and no shadow model: left out here.
    overrides = [
        "~eval.metrics.mia_efficacy",
        "~eval.metrics.mia_efficacy_val",
        "~eval.metrics.avg_gap",
        "~eval.metrics.tune_gap",
    ]
    if not check.args.tiny:
        overrides.append("dataset.download=false")
    return [
        *dataset,
        "--device",
        check.device.type,
        *check.setting[setting],
        *overrides,
    ]


def shadows(check: Check) -> dict:
    """scripts/bench_lira.py: shadow models per minute of `eval=full` (batched shadows, fresh cache)."""
    args = bench_lira.parse_args(shadow_args(check))
    r = bench_lira.measure(args, batched=True)
    groups = {k: len(v) for k, v in r["groups"].items()}
    return {
        "models_per_minute": r["models_per_minute"],
        "trainings_per_minute": r["trainings_per_minute"],
        "models_per_minute_note": f"{groups['all shadow models']} models ({groups['all shadow trainings']} "
        f"trainings, {r['trainings_per_minute']:.1f} trainings/min)",
        "run_s": r["total_s"],
        "models": groups,
        "setup": (
            f"{args.dataset} / {args.model}, method {args.method}, N = {args.num_shadows} shadows, recipe "
            f"{r['epochs']} epoch(s), eval.batched_shadows=true, shadow models by kind {groups}; "
            f"{r['trainings_per_minute']:.1f} trainings/min; whole eval=full run {r['total_s']:.0f} s"
        ),
    }


def small_shadows(check: Check) -> dict:
    """scripts/bench_lira.py's CPU case on the GPU: shadow trainings per minute, sequential vs batched."""
    args = bench_lira.parse_args(shadow_args(check, "small_shadows"))
    runs = {mode: bench_lira.measure(args, batched=mode == "batched") for mode in ("sequential", "batched")}
    per_min = {mode: r["trainings_per_minute"] for mode, r in runs.items()}
    trainings = len(runs["batched"]["groups"]["all shadow trainings"])
    return {
        "speedup": per_min["batched"] / per_min["sequential"],
        "speedup_note": (
            f"{per_min['batched']:.1f} vs {per_min['sequential']:.1f} trainings/min, {trainings} trainings each"
        ),
        "trainings_per_minute": per_min,
        "run_s": {mode: r["total_s"] for mode, r in runs.items()},
        "setup": (
            f"{args.dataset} / {args.model} {' '.join(args.overrides[:2])}, method {args.method}, "
            f"N = {args.num_shadows} shadows ({trainings} shadow trainings), recipe {runs['batched']['epochs']} "
            f"epoch(s), fresh cache per mode; shadow trainings per minute sequential "
            f"{per_min['sequential']:.1f}, batched {per_min['batched']:.1f}; whole eval=full runs "
            + ", ".join(f"{mode} {r['total_s']:.0f} s" for mode, r in runs.items())
        ),
    }


def expected_metrics(results: dict) -> list[str]:
    """Every metric column that applies to the run (split accuracies only for the splits it has)."""
    sizes = results["sizes"]
    return [k for k in results["metric_info"] if not k.endswith("_acc") or k.removesuffix("_acc") in sizes]


def mission_overrides(check: Check) -> list[str]:
    return ["method=imu", *check.dataset("cifar"), "forget_ratio=0.1", *check.setting["mission"]]


def mission(check: Check) -> dict:
    """The mission's command end to end with a short recipe and the default trainer (trainer=auto): every
    metric, every gap, stage times, and the device it chose."""
    overrides = mission_overrides(check)
    cache = check.fresh_dir()
    common = check.common(cache, trainer="auto")
    results = run(compose([*common, *overrides], output_dir=cache / "run"))
    # The same command again: the original's and Retrain's models and metric values now come from the cache.
    cached = run(compose([*common, *overrides], output_dir=cache / "run_cached"))
    check.measured.update(cached_eval_s=cached["time_s"]["eval"], sizes=results["sizes"])
    expected = expected_metrics(results)
    info = results["metric_info"]
    gaps = [k for k in expected if info[k].get("vs_retrain")]
    retrain = (results.get("retrain") or {}).get("metrics") or {}

    def complete(values: dict, keys: list[str]) -> bool:
        return all(values.get(k) is not None for k in keys)

    metrics_ok = (
        complete(results["metrics"], expected)
        and complete(results["original"]["metrics"], expected)
        and complete(retrain, gaps)
    )
    table = {
        k: {
            "unlearned": results["metrics"].get(k),
            "original": results["original"]["metrics"].get(k),
            "retrain": retrain.get(k),
            "gap": results["gap"].get(k),
        }
        for k in expected
    }
    times = results["time_s"]
    stages_ok = all(times.get(k) is not None for k in ("original", "retrain", "unlearn", "eval", "total"))
    return {
        "eval_share": times["eval"] / times["total"],
        "eval_share_note": f"evaluation {times['eval']:.1f} s of {times['total']:.1f} s, {results['eval_workers']} "
        "evaluation workers",
        "cached_eval_s": cached["time_s"]["eval"],
        "cached_eval_s_note": f"run {cached['time_s']['total']:.1f} s in all",
        "metrics_complete": metrics_ok,
        "gaps_complete": complete(results["gap"], gaps),
        "stage_times_complete": stages_ok,
        "time_s": times,
        "metrics": table,
        "sizes": results["sizes"],
        "run_status": results["status"],
        "on_check_device": torch.device(results["env"]["device"]).type == check.device.type,
        "on_check_device_note": f"trainer=auto chose {results['env']['device']}",
        "setup": (
            f"unlearn {' '.join(overrides)} trainer=auto (fresh model cache, {results['env']['device_name']}); "
            f"stage seconds { ({k: round(v, 1) for k, v in times.items() if v is not None}) }; "
            f"metrics (unlearned / Retrain / gap): "
            + ", ".join(
                f"{k} {_num(v['unlearned'])} / {_num(v['retrain'])} / {_num(v['gap'])}"
                for k, v in table.items()
            )
        ),
    }


# SalUn's Table 1 rows besides Retrain, and IMU, as scripts/paper.py runs them.
SALUN_SEED_METHODS = tuple(PROTOCOLS["salun_cifar10"].methods())


def projected_salun_seed(check: Check) -> dict:
    """One seed of the SalUn CIFAR-10 protocol (experiment=salun_cifar10), projected from the rates this check
    measured: the original and Retrain trained at the runner's CIFAR-10 rate (plus their compilation), each
    method's epochs over the training splits it is granted (an upper bound: every granted image once per
    epoch, at the training rate), and one cached-reference evaluation per method run."""
    rate, sizes = check.measured.get("runner_cifar"), check.measured.get("sizes")
    eval_s = check.measured.get("cached_eval_s")
    if rate is None or sizes is None or eval_s is None:
        raise RuntimeError("needs the train_cifar10 and mission steps' figures (run them first)")
    compile_s = check.measured.get("compile_cifar") or 0.0
    reference = compose(["experiment=salun_cifar10"], output_dir=check.work / "projection")
    # the original trains on D_f + D_r, Retrain on D_r
    image_steps = {"original and Retrain": reference.recipe.epochs * (sizes["forget"] + 2 * sizes["retain"])}
    for name in SALUN_SEED_METHODS:
        cfg = compose(["experiment=salun_cifar10", f"method={name}"], output_dir=check.work / "projection")
        needs = validate(cfg)[1].needs & {"forget", "retain"}
        image_steps[name] = int(cfg.method.get("epochs") or 1) * sum(sizes[split] for split in needs)
    seconds = {who: steps / rate for who, steps in image_steps.items()}
    seconds["compilation"] = 2 * compile_s
    seconds["evaluation"] = (len(SALUN_SEED_METHODS) + 1) * eval_s
    total = sum(seconds.values())
    return {
        "seconds": total,
        "seconds_note": f"{total / 60:.1f} min",
        "parts_s": seconds,
        "setup": (
            f"experiment=salun_cifar10 ({reference.recipe.epochs} epochs), split sizes of the mission step "
            f"{sizes}; training rate {rate:,.0f} img/s (train_cifar10), compilation {compile_s:.1f} s per "
            f"model, evaluation {eval_s:.1f} s per run (mission, cached references); seconds by part: "
            + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        ),
    }


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"


TRAINING_GOALS = (
    Goal("ratio", "runner / eager plain loop, images/s", ">=", 1.7, "{:.2f}x"),
    Goal("img_s", "runner, images/s", ">=", 45_000, "{:,.0f}"),
)

STEPS = (
    Step(
        "eager_loop_cifar10",
        "Training, CIFAR-10 ResNet-18, eager plain loop (the baseline)",
        60,  # the first step: CUDA start-up and cuDNN's autotuning fall in it
        lambda c: eager_loop(c, "cifar"),
        (Goal("img_s", "eager plain loop, images/s", "report", fmt="{:,.0f}"),),
    ),
    Step(
        "train_cifar10",
        "Training, CIFAR-10 ResNet-18, runner",
        120,  # compilation included
        lambda c: training_speed(c, "cifar"),
        TRAINING_GOALS,
    ),
    Step(
        "fashion_mnist_accuracy",
        "Fashion-MNIST ResNet-18 to 93.5 %",
        40,
        time_to_accuracy,
        (
            Goal("test_acc", "test accuracy", ">=", 0.935, "{:.2%}"),
            Goal("seconds", "wall seconds of the training", "<=", 20, "{:.1f} s"),
        ),
    ),
    Step(
        "imu_influence",
        "IMU influence",
        25,
        imu_influence,
        (
            Goal(
                "speedup",
                "closed form / per-sample loop, samples/s (runner precision)",
                ">=",
                1000,
                "{:,.0f}x",
            ),
            Goal("max_rel_diff", "closed form vs loop, max |diff| / max |I| (float32)", "<=", 1e-4, "{:.1e}"),
        ),
    ),
    Step(
        "imu_stage",
        "IMU stage, fast path",
        25,
        imu_stage,
        (Goal("ratio", "IMU stage / one forward pass over D_f", "<=", 1.5, "{:.2f}x"),),
    ),
    Step(
        "mission",
        "Mission command, method=imu on CIFAR-10",
        150,  # run twice: fresh cache, then with the references cached
        mission,
        (
            Goal("metrics_complete", "every metric (unlearned, original, Retrain)", "true"),
            Goal("gaps_complete", "every gap to Retrain", "true"),
            Goal("stage_times_complete", "stage times (original, retrain, unlearn, eval, total)", "true"),
            Goal("on_check_device", "the default trainer=auto runs on the GPU", "true"),
            Goal("eval_share", "evaluation share of the run's time (fresh cache)", "<=", 0.15, "{:.0%}"),
            Goal("cached_eval_s", "evaluation of a run whose references are cached", "<=", 10, "{:.1f} s"),
        ),
    ),
    Step(
        "projected_salun_seed",
        "Projected SalUn seed (CIFAR-10, original + Retrain at 182 epochs, the protocol's methods, evaluation)",
        20,
        projected_salun_seed,
        (Goal("seconds", "projected wall time of one seed", "<=", 480, "{:,.0f} s"),),
    ),
    Step(
        "small_shadows",
        "Shadow models for eval=full, Fashion-MNIST MLP, batched vs sequential",
        130,
        small_shadows,
        (Goal("speedup", "batched / sequential shadow trainings per minute", ">=", 8, "{:.1f}x"),),
    ),
    Step(
        "inference",
        "Evaluation inference, Fashion-MNIST ResNet-18",
        15,
        inference,
        (Goal("img_s", "`predict`, images/s", ">=", 200_000, "{:,.0f}"),),
    ),
    Step(
        "shadows",
        "Shadow models for eval=full, Fashion-MNIST",
        110,
        shadows,
        (Goal("models_per_minute", "shadow models per minute", ">=", 20, "{:.1f}"),),
    ),
)


# ---------------------------------------------------------------------------------------------------
# Running the steps and writing the results.
# ---------------------------------------------------------------------------------------------------


def not_run(step: Step, why: str) -> dict:
    """A step's entry before (or instead of) running it: every goal listed, nothing measured."""
    return {
        "name": step.name,
        "title": step.title,
        "status": "not run",
        "budget_s": step.budget_s,
        "seconds": 0.0,
        "error": why,
        "goals": [goal.judge({}) for goal in step.goals],
        "figures": {},
    }


def run_step(step: Step, check: Check, seconds_left: float) -> dict:
    budget = min(step.budget_s, seconds_left)
    entry = {"name": step.name, "title": step.title, "budget_s": step.budget_s, "seconds": 0.0, "error": None}
    figures: dict = {}
    if budget < 5:
        entry["status"], entry["error"] = "skipped", "no time left in the run's budget"
    else:
        print(f"\n=== {step.name}: {step.title} (budget {budget:.0f} s)", flush=True)
        start = time.perf_counter()
        try:
            with time_limit(budget):
                figures = step.fn(check)
            entry["status"] = "ok"
        except (Exception, SystemExit) as err:  # one failing step must not lose the others' figures
            entry["status"] = "timeout" if isinstance(err, StepTimeout) else "error"
            entry["error"] = f"{type(err).__name__}: {err}"
            entry["traceback"] = traceback.format_exc().splitlines()[-12:]
            traceback.print_exc()
        entry["seconds"] = time.perf_counter() - start
        for folder in check.scratch:
            shutil.rmtree(folder, ignore_errors=True)
        check.scratch.clear()
        gc.collect()
        if check.device.type == "cuda":
            torch.cuda.empty_cache()
    entry["goals"] = [goal.judge(figures) for goal in step.goals]
    entry["figures"] = figures
    for goal in entry["goals"]:
        print(f"  {goal['what']}: {goal['shown'] or '-'} (goal {goal['goal']}): {goal['status']}", flush=True)
    return entry


def keep_earlier(report: dict, earlier: dict, steps: list[str]) -> None:
    """Give the steps not run now (not in `steps`) their entries from an `earlier` run, if it ran them."""
    before = {step["name"]: step for step in earlier["steps"]}
    for i, step in enumerate(report["steps"]):
        old = before.get(step["name"])
        if step["name"] not in steps and old is not None and old["status"] != "not run":
            report["steps"][i] = {**old, "earlier_run": old.get("earlier_run") or earlier["started"]}


def markdown(report: dict, json_path: str) -> str:
    """The doc section: one table of every goal, then what each step ran."""
    lines = [
        "## GPU check (`make gpu-check`)",
        "",
        f"Written by `scripts/gpu_check.py` ({_when(report['started'])}{', **tiny CPU run**' if report['tiny'] else ''}) on "
        f"{report['device_name']}, torch {report['torch']}, Lightning {report['lightning']}: "
        f"{report['total_s']:.0f} s of a {report['budget_s']:.0f} s budget. The run's JSON "
        f"(`{Path(json_path).name}`) holds every figure. Goals are for one H100 / H200-class GPU."
        + (
            " Steps marked 'run of ...' were not run this time: their entries are an earlier run's (`--keep`)."
            if any(step.get("earlier_run") for step in report["steps"])
            else ""
        ),
        "",
        "| step | figure | value | goal | status |",
        "|---|---|---:|---|---|",
    ]
    for step in report["steps"]:
        for goal in step["goals"]:
            status = goal["status"] if step["status"] == "ok" else f"{goal['status']} (step {step['status']})"
            status += _earlier(step)
            note = f" ({goal['note']})" if goal["note"] else ""
            lines.append(
                f"| {step['title']} | {goal['what']} | {goal['shown'] or '-'} | {goal['goal']} | "
                f"{status}{note} |"
            )
    lines += ["", "What each step ran:", ""]
    for step in report["steps"]:
        what = step["figures"].get("setup") or step["error"] or ""
        lines.append(
            f"- **{step['name']}** ({step['status']}, {step['seconds']:.0f} s of {step['budget_s']:.0f}"
            f"{_earlier(step)}): {what}"
        )
    return "\n".join(lines)


def _when(started: str) -> str:
    return started[:16].replace("T", " ") + " UTC"


def _earlier(step: dict) -> str:
    """ ", run of <when>" for a step whose entry an earlier run measured (`--keep`), else ""."""
    return f", run of {_when(step['earlier_run'])}" if step.get("earlier_run") else ""


def write_outputs(report: dict, args: argparse.Namespace) -> None:
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=str))
    if args.doc:
        benchmark.replace_section(Path(args.doc), "gpu-check", markdown(report, args.json))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir",
        default=str(REPO.parent / "shared" / "data"),
        help="folder with FashionMNIST/raw and cifar10-jpeg.tar.gz (not read with --tiny)",
    )
    p.add_argument("--json", default=str(REPO / "outputs" / "gpu_check.json"))
    p.add_argument(
        "--doc",
        default=None,
        help="markdown file whose gpu-check section is rewritten "
        "(default: docs/benchmarks.md; none with --tiny)",
    )
    p.add_argument("--work-dir", default=str(REPO / "outputs" / "gpu_check"), help="caches and scratch files")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--tiny", action="store_true", help="tiny data and models: every step's code in seconds")
    p.add_argument(
        "--budget",
        type=float,
        default=465.0,
        help="seconds for all steps together (465: under 8 min with the start-up)",
    )
    p.add_argument("--steps", nargs="+", choices=[s.name for s in STEPS], help="run only these steps")
    p.add_argument(
        "--from-json",
        help="run nothing: write --json and --doc from this run's JSON (with --steps and --keep, the steps "
        "named come from it and the others from --keep)",
    )
    p.add_argument(
        "--keep",
        help="an earlier run's JSON: the steps that --steps leaves out keep their entries from it (marked so)",
    )
    args = p.parse_args(argv)
    if args.doc is None and not args.tiny:
        args.doc = str(REPO / "docs" / "benchmarks.md")
    return args


def start_run(args: argparse.Namespace, now: list[str]) -> tuple[Check, dict]:
    """The check's device and working folder, and a report that lists every step, none measured yet."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    args.device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    )
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    peak, source = bf16_peak(args.device_name)
    report = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tiny": args.tiny,
        "device": str(device),
        "device_name": args.device_name,
        "peak_bf16_tflops": peak,
        "peak_source": source,
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "budget_s": args.budget,
        "total_s": 0.0,
        "steps": [
            not_run(step, "not reached (the run was stopped)" if step.name in now else "left out by --steps")
            for step in STEPS
        ],
    }
    return Check(args, device, work), report


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    now = args.steps or [step.name for step in STEPS]  # the steps run now (or taken from --from-json)
    if args.from_json:
        check, report = None, json.loads(Path(args.from_json).read_text())
    else:
        check, report = start_run(args, now)
    if args.keep:
        keep_earlier(report, json.loads(Path(args.keep).read_text()), now)
    write_outputs(report, args)  # every step listed from the start, in case the run is killed
    if check is not None:
        start = time.perf_counter()
        for i, step in enumerate(STEPS):
            if step.name in now:
                report["steps"][i] = run_step(step, check, args.budget - (time.perf_counter() - start))
                report["total_s"] = time.perf_counter() - start
                write_outputs(report, args)
    print(f"\nwrote {args.json}" + (f" and the gpu-check section of {args.doc}" if args.doc else ""))
    return report


if __name__ == "__main__":
    main()
