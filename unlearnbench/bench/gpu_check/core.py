"""What every step of the GPU check shares: the settings (GPU and tiny), goals, steps, the time limit and the
`Check` (arguments, device, working folders, figures later steps build on)."""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from unlearnbench.bench import train
from unlearnbench.bench.train import sync

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
        # The CPU case of `benchmark.py lira` (docs/benchmarks.md), sequential and batched.
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


# The steps each module declares (module name -> its steps in order): each step function declares itself with
# `@step` where it is defined; gpu_check/steps.py sets the modules' order.
DECLARED: dict[str, list[Step]] = {}


def step(name: str, title: str, budget_s: float, *goals: Goal):
    """Declare the decorated function (check -> figures) as the check's step `name`, judged by `goals`."""

    def declare(fn: Callable[[Check], dict]) -> Callable[[Check], dict]:
        DECLARED.setdefault(fn.__module__, []).append(Step(name, title, budget_s, fn, goals))
        return fn

    return declare


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
    """bench.train.train_setup for `role`, timed (the first CIFAR-10 JPEG load decodes the archive)."""
    start = time.perf_counter()
    setup = train.train_setup([*check.common(check.fresh_dir()), *check.dataset(role), *extra])
    return setup, time.perf_counter() - start


def num(value) -> str:
    return "-" if value is None else f"{value:.4f}"
