#!/usr/bin/env python
"""Speed benchmarks, measured side by side in one run (ratios, not absolute times, are the result).

Cases:
  train  Lightning training of the original model (the runner's path: GPU-resident TensorBatches,
         LitClassifier, Trainer) vs a plain PyTorch loop over the same device-resident tensors, same
         model, optimiser, augmentation, precision and memory format. Prints images/s and the ratio.
  imu    IMU influence scores: closed form vs per-sample autograd loop (scripts/bench_imu.py).
  lira   shadow-model metrics (LiRA, U-LiRA, challenge score): shadow models per minute (scripts/bench_lira.py).
  all    every case with its defaults.

Examples:
  python scripts/benchmark.py train --dataset fashion_mnist --data-dir ../shared/data --device cuda
  python scripts/benchmark.py train --device cpu --model small_cnn --limit 4096
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from unlearnbench.data.batches import Augment, TensorBatches  # noqa: E402
from unlearnbench.data.sources import load_digits, load_fashion_mnist  # noqa: E402
from unlearnbench.models.resnet import ResNet18  # noqa: E402
from unlearnbench.models.small import SmallCNN  # noqa: E402
from unlearnbench.training.lightning import fit  # noqa: E402


def load(args):
    if args.dataset == "fashion_mnist":
        raw = load_fashion_mnist(root=args.data_dir)
        mean, std = [0.286], [0.353]
    else:
        raw = load_digits()
        mean, std = [0.305], [0.38]
    x, y = raw.train_x, raw.train_y
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    return x, y, mean, std, len(raw.classes)


def make_model(args, mean, std, num_classes, in_channels):
    cls = ResNet18 if args.model == "resnet18" else SmallCNN
    torch.manual_seed(0)
    return cls(num_classes=num_classes, in_channels=in_channels, mean=mean, std=std)


def plain_loop(model, batches, epochs, lr, device, precision):
    """The hand-written reference: same optimiser and schedule as LitClassifier, no framework."""
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    use_bf16 = device.type == "cuda" and precision.startswith("bf16")
    for _ in range(epochs):
        for x, y in batches:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(args) -> dict:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    precision = "bf16-mixed" if cuda else "32-true"
    x, y, mean, std, num_classes = load(args)
    x, y = x.to(device), y.to(device)
    augment = Augment(crop_padding=2, flip=True)
    recipe = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
    trainer_cfg = {"accelerator": "gpu" if cuda else "cpu", "devices": 1, "precision": precision,
                   "enable_progress_bar": False, "deterministic": False, "benchmark": cuda}

    def batches(seed):
        return TensorBatches(x, y, args.batch_size, shuffle=True, augment=augment, seed=seed, channels_last=cuda)

    def run_lightning():
        model = make_model(args, mean, std, num_classes, x.shape[1])
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        fit(model, batches(1), None, recipe, trainer_cfg, logger=None, root_dir="/tmp/unlearnbench-bench")

    def run_plain():
        model = make_model(args, mean, std, num_classes, x.shape[1])
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        plain_loop(model, batches(1), args.epochs, 0.1, device, precision)

    results = {}
    # Warm-up both paths once (cuDNN autotuning, allocator), then alternate timed repeats.
    for fn in (run_plain, run_lightning):
        fn()
    times = {"plain": [], "lightning": []}
    for _ in range(args.repeats):
        for name, fn in (("plain", run_plain), ("lightning", run_lightning)):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    images = len(y) * args.epochs
    for name, ts in times.items():
        results[name] = images / min(ts)
    ratio = results["lightning"] / results["plain"]
    name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"\n## train: {args.model} on {args.dataset} ({len(y)} images x {args.epochs} epochs, batch "
          f"{args.batch_size}, {precision}, device {name}, best of {args.repeats})\n")
    print("| path | images/s |\n|---|---|")
    print(f"| plain PyTorch loop | {results['plain']:.0f} |")
    print(f"| unlearnbench Lightning runner | {results['lightning']:.0f} |")
    print(f"\nratio lightning / plain = {ratio:.3f}")
    return {"plain_img_s": results["plain"], "lightning_img_s": results["lightning"], "ratio": ratio}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="case", required=True)
    train = sub.add_parser("train", help="Lightning runner vs plain loop, images/s")
    train.add_argument("--dataset", choices=["digits", "fashion_mnist"], default="digits")
    train.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    train.add_argument("--model", choices=["resnet18", "small_cnn"], default="small_cnn")
    train.add_argument("--device", default="auto")
    train.add_argument("--epochs", type=int, default=2)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    train.add_argument("--repeats", type=int, default=2)
    sub.add_parser("imu", help="IMU influence: closed form vs per-sample loop", add_help=False)
    sub.add_parser("lira", help="shadow models per minute for eval=full", add_help=False)
    sub.add_parser("all", help="every case with its defaults")
    args, rest = parser.parse_known_args(argv)
    if args.case == "train":
        bench_train(args)
    elif args.case == "imu":
        import bench_imu

        bench_imu.main(rest)
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
