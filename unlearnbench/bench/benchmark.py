"""Speed benchmarks, measured side by side in one run (ratios, not absolute times, are the result).

Cases:
  train  Lightning training of the original model (the runner's path: GPU-resident TensorBatches,
         LitClassifier, Trainer) vs a plain PyTorch loop over the same device-resident tensors, same
         model, optimiser, augmentation, precision and memory format. Prints images/s and the ratio.
  imu    IMU influence scores: closed form vs per-sample autograd loop (unlearnbench/bench/imu.py).
  lira   shadow-model metrics (LiRA, U-LiRA, challenge score): shadow models per minute (unlearnbench/bench/lira.py).
  cli    the command's own wait: a cached default `unlearn` (every model from the cache) and `unlearn --help`,
         timed side by side with `python -c "import torch"` (the floor) in one run; goals 3.5 s and 1.5 s.
         Also a cached sweep's seconds per job (one process: the imports are paid once per sweep).
  all    every case with its defaults.

Examples (`python -m unlearnbench.bench.benchmark` is the same command):
  python scripts/benchmark.py train --dataset fashion_mnist --data-dir ../shared/data --device cuda
  python scripts/benchmark.py train --dataset cifar10_jpeg --data-dir ../shared/data --model resnet18 --device cuda
  python scripts/benchmark.py train --device cpu --model small_cnn --limit 4096
  python scripts/benchmark.py cli --repeats 5
"""

from __future__ import annotations

import argparse
import sys

from unlearnbench.sweeps.named import ROOT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="case", required=True)
    train = sub.add_parser("train", help="Lightning runner vs plain loop, images/s")
    train.add_argument(
        "--dataset",
        choices=["digits", "synthetic", "fashion_mnist", "cifar10", "cifar10_jpeg"],
        default="digits",
    )
    train.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
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
    return p


def main(argv: list[str] | None = None) -> int:
    from unlearnbench.bench import imu, lira
    from unlearnbench.bench.command import bench_cli
    from unlearnbench.bench.train import bench_train

    p = parser()
    args, rest = p.parse_known_args(argv)
    if args.case == "train":
        bench_train(args)
    elif args.case == "imu":
        imu.main(rest)
    elif args.case == "cli":
        bench_cli(args)
    elif args.case == "lira":
        lira.main(rest)
    else:
        bench_train(p.parse_args(["train"]))
        imu.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
