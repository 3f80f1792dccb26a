"""Where and how tensors are computed: device, mixed precision, memory format, data placement.

The device and precision come from the `trainer` config (Lightning's arguments, so original training and
everything else agree); the rest from the `runtime` config, whose `auto` values follow the device.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from unlearnbench.config.checks import check_choice, check_int, check_number
from unlearnbench.errors import ConfigError
from unlearnbench.progress import interactive

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _auto(value: Any, on_cuda: Any, on_cpu: Any, cuda: bool) -> Any:
    return (on_cuda if cuda else on_cpu) if value == "auto" else value


def device_for(accelerator: str, key: str = "trainer") -> torch.device:
    """The device of a `trainer.accelerator` (or a benchmark's `--device`, named by `key`): CUDA for gpu, cuda,
    or auto where a CUDA device is visible. The one check that a GPU asked for exists (`config.validate` and
    the benchmarks call it before any work)."""
    cuda = torch.cuda.is_available()
    if accelerator in ("gpu", "cuda") and not cuda:
        raise ConfigError(key, accelerator, "cpu (no CUDA device is visible on this machine)")
    return torch.device("cuda" if cuda and accelerator in ("gpu", "cuda", "auto") else "cpu")


def apply_determinism(mode: Any) -> None:
    """`trainer.deterministic` for the whole run (methods and evaluation run outside Lightning too)."""
    on, warn_only = mode in (True, "warn"), mode == "warn"
    if (
        torch.are_deterministic_algorithms_enabled() == on
        and torch.is_deterministic_algorithms_warn_only_enabled() == warn_only
    ):
        return
    torch.use_deterministic_algorithms(on, warn_only=warn_only)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def apply_threads(threads: Any) -> None:
    """`runtime.threads`: torch's intra-op thread count for the run (None: torch's default, the cores or
    OMP_NUM_THREADS). Float sums split over another number of threads round differently, so a run is
    reproduced at the thread count results.json `env.threads` records."""
    if threads is not None:
        torch.set_num_threads(check_int("runtime.threads", threads, minimum=1, hint="or null"))


# runtime config keys that are Runtime fields as they are (checked in __post_init__).
_PASSED_AS_THEY_ARE = (
    "compile",
    "compile_mode",
    "compile_backend",
    "compile_min_steps",
    "checkpoint_fraction",
    "eval_workers",
)


@dataclass
class Runtime:
    device: torch.device
    precision: str = "32-true"
    channels_last: bool = False
    data_on_device: bool = True
    eval_batch_size: int = 1024
    num_workers: int = 2
    progress: bool = True
    limit_batches: int | None = None
    compile: Any = "auto"  # torch.compile for training from scratch: auto (GPU, long trainings), true, false
    compile_mode: str = "default"
    compile_backend: str = "inductor"
    compile_min_steps: int = 2000
    checkpoint_fraction: float | None = 0.1
    eval_workers: Any = "auto"

    def __post_init__(self):
        check_choice("runtime.compile", self.compile, ("auto", True, False))
        check_choice("runtime.compile_mode", self.compile_mode, COMPILE_MODES)
        check_int("runtime.compile_min_steps", self.compile_min_steps, minimum=0)
        check_number(
            "runtime.checkpoint_fraction", self.checkpoint_fraction, 0, 1, low_open=True, allow_none=True
        )
        if self.eval_workers != "auto":
            check_int("runtime.eval_workers", self.eval_workers, minimum=0, hint="or auto")

    @classmethod
    def from_cfg(cls, trainer: dict, runtime: dict | None = None, data_bytes: int = 0) -> Runtime:
        """The runtime for a `trainer` config (accelerator, precision, progress bar) and a `runtime` config."""
        runtime = runtime or {}
        device = device_for(str(trainer.get("accelerator", "cpu")))
        on_cuda = device.type == "cuda"
        place = runtime.get("data_on_device", "auto")
        if place == "auto":
            # Keep the whole dataset on the GPU when it takes under half the free memory.
            place = not on_cuda or data_bytes < 0.5 * torch.cuda.mem_get_info(device)[0]
        return cls(
            device=device,
            precision=str(trainer.get("precision", "32-true")),
            channels_last=bool(_auto(runtime.get("channels_last", "auto"), True, False, on_cuda)),
            data_on_device=bool(place),
            eval_batch_size=int(_auto(runtime.get("eval_batch_size", "auto"), 2048, 1024, on_cuda)),
            num_workers=int(runtime.get("num_workers", 2)),
            progress=bool(trainer.get("enable_progress_bar", True)) and interactive(),  # else logged lines
            limit_batches=runtime.get("limit_batches"),
            **{key: runtime[key] for key in _PASSED_AS_THEY_ARE if key in runtime},
        )

    def compile_options(self, steps: int) -> dict | None:
        """torch.compile's arguments for a training of `steps` steps, or None to train eagerly.

        `auto` compiles on a GPU when the training is long enough to repay the compilation (tens of seconds
        for a ResNet-18, a few percent of a 182-epoch training); on a CPU the step is bound by its matrix
        products, which compiling does not speed up.
        """
        on = self.compile
        if on == "auto":
            on = self.device.type == "cuda" and steps >= self.compile_min_steps
        if not on:
            return None
        options = {"backend": self.compile_backend}
        if self.compile_mode != "default":
            options["mode"] = self.compile_mode
        return options

    def checkpoint_every(self, epochs: int) -> int | None:
        """Epochs between a training's resumable checkpoints (`checkpoint_fraction` of them), or None."""
        if self.checkpoint_fraction is None:
            return None
        return max(1, math.ceil(self.checkpoint_fraction * int(epochs)))

    def evaluation_workers(self, tasks: int) -> int:
        """Processes for the metrics' attack fits: `eval_workers`, or with `auto` one per task up to the cores
        a GPU run leaves free (two kept for the run itself); 0 (in this process) on a CPU run, whose cores the
        run's own computation already uses."""
        if self.eval_workers != "auto":
            return int(self.eval_workers)
        if self.device.type != "cuda":
            return 0
        return max(0, min(tasks, (os.cpu_count() or 1) - 2))

    def autocast(self):
        """Autocast when the precision asks for it (bf16 / fp16 on CUDA, bf16 on the CPU); a no-op otherwise."""
        if self.precision.startswith("bf16"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.precision.startswith("16") and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def batches(self, x: torch.Tensor, y: torch.Tensor, **kwargs):
        """Batches of (x, y) for this device: tensors resident on it, or streamed by a DataLoader."""
        from unlearnbench.data.batches import LoaderBatches, TensorBatches

        kwargs["channels_last"] = self.channels_last
        kwargs.setdefault("limit", self.limit_batches)
        if self.data_on_device:
            return TensorBatches(x.to(self.device), y.to(self.device), **kwargs)
        return LoaderBatches(x, y, device=self.device, num_workers=self.num_workers, **kwargs)

    def model_input(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 images as a model takes them here: on the device, float in [0, 1], in the memory format."""
        from unlearnbench.data.batches import to_float

        x = to_float(x_u8.to(self.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model
