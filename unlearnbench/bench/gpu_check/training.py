"""The GPU check's training and inference steps: the eager plain loop (the baseline), the runner's training
rate (compiled, FLOPs and MFU) and the time to 93.5 % on Fashion-MNIST."""

from __future__ import annotations

import tempfile
import time

import torch
from omegaconf import OmegaConf
from pytorch_lightning.loggers.logger import Logger

from unlearnbench.bench import train
from unlearnbench.bench.gpu_check.core import Check, Goal, bf16_peak, step, sync, train_setup
from unlearnbench.data.batches import TensorBatches
from unlearnbench.data.splits import Split
from unlearnbench.evaluation import predict
from unlearnbench.metrics.accuracy import accuracy
from unlearnbench.training.lightning import fit


@step(
    "eager_loop_cifar10",
    "Training, CIFAR-10 ResNet-18, eager plain loop (the baseline)",
    60,  # the first step: CUDA start-up and cuDNN's autotuning fall in it
    Goal("img_s", "eager plain loop, images/s", "report", fmt="{:,.0f}"),
)
def eager_loop(check: Check, role: str = "cifar") -> dict:
    """The fixed baseline: a hand-written eager loop (same model, batches, augmentation, precision and
    channels_last as the runner; no compile, no CUDA graphs, no framework), images/s."""
    setup, load_s = train_setup(check, role, check.setting["train"])
    repeats = min(check.repeats, 2)
    r = train.measure_train(setup, repeats, paths=("plain",))
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


@step(
    "train_cifar10",
    "Training, CIFAR-10 ResNet-18, runner",
    120,  # compilation included
    Goal("ratio", "runner / eager plain loop, images/s", ">=", 1.7, "{:.2f}x"),
    Goal("img_s", "runner, images/s", ">=", 45_000, "{:,.0f}"),
)
def training_speed(check: Check, role: str = "cifar") -> dict:
    """The Lightning runner (`fit` on TensorBatches, compiled as a long training is) vs the eager loop's
    rate measured by the step before; FLOPs and MFU."""
    setup, load_s = train_setup(check, role, check.setting["train"])
    repeats = min(check.repeats, 2)
    r = train.measure_train(setup, repeats, paths=("lightning",))
    runner = r["lightning_img_s"]
    check.measured[f"runner_{role}"] = runner
    check.measured[f"compile_{role}"] = r.get("lightning_compile_s")
    eager = check.measured.get(f"eager_{role}")
    flops = train.train_flops_per_image(setup)
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


@step(
    "fashion_mnist_accuracy",
    "Fashion-MNIST ResNet-18 to 93.5 %",
    40,
    Goal("test_acc", "test accuracy", ">=", 0.935, "{:.2%}"),
    Goal("seconds", "wall seconds of the training", "<=", 20, "{:.1f} s"),
)
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
            train.new_model(setup),
            train.train_batches(setup),
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
