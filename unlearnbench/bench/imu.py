"""Benchmark IMU's influence scores: closed-form batched head gradients vs a per-sample autograd loop.

IMU (Fan et al., arXiv 2508.01620) scores each forget sample by I_i = -(g_i / F) . gbar, g_i the
CE gradient of the final linear layer. The authors' code gets each g_i with one backward pass per
sample; `unlearnbench.methods.lib.influence.linear_head_influence` gets all of them from one batched
forward pass (g_i = [(softmax(z_i) - onehot(y_i)) h_i^T, softmax(z_i) - onehot(y_i)]). This script
times both in the same run (after a warm-up, with CUDA synchronisation), plus the torch.func vmap
fallback on cached features, and compares the influence vectors on the samples the loop covers.

    python scripts/benchmark.py imu --device cpu --model resnet18 --samples 256 --loop-samples 32
    python -m unlearnbench.bench.imu --device cuda --samples 10000 --loop-samples 512 --data-dir ../shared/data

The loop is timed on the first --loop-samples samples only (rates are per sample), so the script
stays short on CPU. Influence is relative to the set it is computed on, so the differences are
measured with both methods on that same subset.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.bench import bench_device
from unlearnbench.methods.lib.influence import (
    fisher_influence,
    linear_head_influence,
    penultimate_features,
    vmap_head_influence,
)
from unlearnbench.report.tables import markdown

FASHION_MEAN, FASHION_STD = [0.2860], [0.3530]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--samples", type=int, default=256, help="forget samples scored by the closed form")
    p.add_argument("--loop-samples", type=int, default=16, help="samples scored by the per-sample loop")
    p.add_argument("--model", choices=("resnet18", "small_cnn"), default="resnet18")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats (the median is reported)")
    p.add_argument("--batch-size", type=int, default=512, help="forward batch size of the closed form")
    p.add_argument("--damping", type=float, default=0.01)
    p.add_argument(
        "--data-dir", default=None, help="folder holding FashionMNIST/raw; random images if absent"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    p.add_argument("--allow-tf32", action="store_true", help="let CUDA use TF32 (faster, less exact)")
    p.add_argument(
        "--precision",
        choices=("32", "bf16"),
        default="32",
        help="32: exact float32 (the exactness check); bf16: both paths' forward passes under bf16 autocast, "
        "as the runner's bf16-mixed precision runs IMU",
    )
    args = p.parse_args(argv)
    for key in ("samples", "loop_samples", "repeats", "batch_size", "threads"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be a positive integer")
    return args


def build_model(name: str, device: torch.device) -> nn.Module:
    """A randomly initialised 10-class model for 1x28x28 images (influence cost does not depend on training)."""
    from unlearnbench.models.resnet import ResNet18
    from unlearnbench.models.small import SmallCNN

    cls = ResNet18 if name == "resnet18" else SmallCNN
    return cls(num_classes=10, in_channels=1, mean=FASHION_MEAN, std=FASHION_STD).to(device).eval()


def load_samples(n: int, data_dir: str | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [n, 1, 28, 28] and labels: the first n Fashion-MNIST training images, or random ones."""
    if data_dir is not None:  # the dataset as a run loads it (conf/dataset/fashion_mnist.yaml)
        from unlearnbench import compose
        from unlearnbench.config.core import build

        overrides = ["dataset=fashion_mnist", "dataset.download=false", f"paths.data_dir={data_dir}"]
        raw = build(compose(overrides).dataset.source)
        if n > len(raw.train_y):
            raise SystemExit(f"--samples {n} exceeds the {len(raw.train_y)} Fashion-MNIST training images")
        return raw.train_x[:n].clone(), raw.train_y[:n].clone()
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8), torch.randint(
        0, 10, (n,), generator=gen
    )


def autocast_for(precision: str, device: torch.device):
    """A context factory: bf16 autocast on `device` for "bf16", a no-op for "32"."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def image_batches(x_u8: torch.Tensor, y: torch.Tensor, batch_size: int):
    for start in range(0, len(y), batch_size):
        yield x_u8[start : start + batch_size].float().div(255.0), y[start : start + batch_size]


def closed_form_influence(
    model: nn.Module, x_u8, y, batch_size: int, damping: float, autocast=contextlib.nullcontext
) -> torch.Tensor:
    """Batched eval-mode forward for the features, then the closed-form influence."""
    feats, labels = penultimate_features(model, image_batches(x_u8, y, batch_size), autocast)
    return linear_head_influence(feats, labels, model.head.weight, model.head.bias, damping)


def loop_influence(
    model: nn.Module, x_u8, y, damping: float, autocast=contextlib.nullcontext
) -> torch.Tensor:
    """One forward and one backward per sample (the authors' way), head gradients stacked, same formula."""
    model.eval()
    grads = []
    for i in range(len(y)):
        model.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x_u8[i : i + 1].float().div(255.0))
        loss = F.cross_entropy(logits.float(), y[i : i + 1])
        loss.backward()
        grads.append(torch.cat([model.head.weight.grad.flatten(), model.head.bias.grad]))
    model.zero_grad(set_to_none=True)
    return fisher_influence(torch.stack(grads), damping)


def timed(
    fn: Callable[[], torch.Tensor], warmup: Callable[[], object], device: torch.device, repeats: int
) -> tuple[float, torch.Tensor]:
    """Median wall-clock seconds of `fn` over `repeats` runs after a `warmup` call, and its last output."""
    warmup()  # kernel selection, allocator, lazy init
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def differences(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(max |a - b|, max |a - b| / max |b|)."""
    diff = float((a - b).abs().max())
    return diff, diff / max(float(b.abs().max()), 1e-300)


def prepare(args: argparse.Namespace):
    """The device (TF32 and threads set as asked), the model, the samples on the device and the autocast."""
    device = bench_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.allow_tf32
        torch.backends.cudnn.allow_tf32 = args.allow_tf32
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model(args.model, device)
    x_u8, y = load_samples(args.samples, args.data_dir, args.seed)
    return device, model, x_u8.to(device), y.to(device), autocast_for(args.precision, device)


def measure(args: argparse.Namespace) -> dict:
    """Time the closed form, the per-sample loop and the head-only variants; compare their scores."""
    device, model, x_u8, y, autocast = prepare(args)
    m = min(args.loop_samples, args.samples)
    xs, ys, warm = x_u8[:m], y[:m], min(4, m)

    def closed(xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return closed_form_influence(model, xx, yy, args.batch_size, args.damping, autocast)

    def loop(n: int) -> torch.Tensor:
        return loop_influence(model, xs[:n], ys[:n], args.damping, autocast)

    times, out = {}, {}
    times["loop"], out["loop"] = timed(lambda: loop(m), lambda: loop(warm), device, 1)
    times["closed_form"], _ = timed(
        lambda: closed(x_u8, y), lambda: closed(xs[:warm], ys[:warm]), device, args.repeats
    )
    # The head's share alone, on cached features: closed form vs the torch.func fallback.
    feats, labels = penultimate_features(model, image_batches(x_u8, y, args.batch_size))
    head = model.head

    def head_closed() -> torch.Tensor:
        return linear_head_influence(feats, labels, head.weight, head.bias, args.damping)

    times["closed_form_head_only"], full_closed = timed(head_closed, head_closed, device, args.repeats)
    times["vmap_head_only"], out["vmap"] = timed(
        lambda: vmap_head_influence(head, feats, labels, args.damping),
        lambda: vmap_head_influence(head, feats[:warm], labels[:warm], args.damping),
        device,
        args.repeats,
    )
    abs_diff, rel_diff = differences(closed(xs, ys), out["loop"])
    vmap_abs, vmap_rel = differences(out["vmap"], full_closed)
    rates = {k: (m if k == "loop" else args.samples) / t for k, t in times.items()}
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "samples": args.samples,
        "loop_samples": m,
        "rates": {k: rates[k] for k in ("closed_form", "loop", "closed_form_head_only", "vmap_head_only")},
        "times": {k: times[k] for k in ("closed_form", "loop", "closed_form_head_only", "vmap_head_only")},
        "precision": args.precision,
        "speedup": rates["closed_form"] / rates["loop"],
        "max_abs_diff": abs_diff,
        "max_rel_diff": rel_diff,
        "vmap_max_abs_diff": vmap_abs,
        "vmap_max_rel_diff": vmap_rel,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = measure(args)
    rates, times, m = result["rates"], result["times"], result["loop_samples"]
    labels = {
        "closed_form": "closed form: batched forward + factorised Fisher",
        "loop": "per-sample autograd loop: forward + backward each",
        "closed_form_head_only": "head only, cached features: closed form",
        "vmap_head_only": "head only, cached features: torch.func vmap",
    }
    table = [
        (label, m if key == "loop" else args.samples, f"{times[key]:.4f}", f"{rates[key]:,.1f}")
        + (f"{rates[key] / rates['loop']:,.1f}x",)
        for key, label in labels.items()
    ]
    data = "Fashion-MNIST" if args.data_dir else "random"
    print(
        f"IMU influence scores: {args.model}, {data} 1x28x28, device {result['device']} ({result['device_name']}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} (loop: 1 run)"
    )
    print()
    print(markdown(("method", "samples", "time (s)", "samples/s", "vs loop"), table, "lrrrr"))
    print()
    print(
        f"closed form vs loop on the same {m} samples: max |diff| {result['max_abs_diff']:.3e}, "
        f"max |diff| / max |I| {result['max_rel_diff']:.3e}"
    )
    print(
        f"vmap vs closed form on all {args.samples} samples: max |diff| {result['vmap_max_abs_diff']:.3e}, "
        f"relative {result['vmap_max_rel_diff']:.3e}"
    )
    return result


if __name__ == "__main__":
    main()
