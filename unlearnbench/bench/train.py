"""Training throughput: the runner's Lightning training (GPU-resident TensorBatches, LitClassifier, Trainer)
vs a plain PyTorch loop over the same device-resident tensors, same model, optimiser, augmentation, precision
and memory format. The plain loop is the reference the runner's training is measured against."""

from __future__ import annotations

import tempfile
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from unlearnbench import compose
from unlearnbench.config.core import build
from unlearnbench.data.batches import Augment, TensorBatches
from unlearnbench.report.tables import markdown
from unlearnbench.runtime import Runtime
from unlearnbench.training.lightning import fit
from unlearnbench.training.recipe import build_optimizer


def _container(node):
    return OmegaConf.to_container(node, resolve=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    """The `train` case: both paths side by side, printed as a table with their ratio."""
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
    rows = [
        (label, f"{result[f'{path}_img_s']:.0f}", f"{result[f'{path}_img_s_end_to_end']:.0f}")
        for label, path in (("plain PyTorch loop", "plain"), ("unlearnbench Lightning runner", "lightning"))
    ]
    print(markdown(("path", "images/s from the first batch", "images/s with set-up"), rows, "lrr"))
    print(
        f"\nratio lightning / plain = {result['ratio']:.3f} ({result['ratio_end_to_end']:.3f} with set-up); "
        f"Lightning runner {tflops:.3g} TFLOP/s of model FLOPs"
    )
    return result
