"""The GPU check's evaluation steps: shadow models for `eval=full` (batched vs sequential on a small MLP, then
the ResNet-18 shadows of the mission's method), timed by bench.lira through the public `run`, and evaluation
inference (the project's `predict`)."""

from __future__ import annotations

import torch

from unlearnbench.bench import lira, train
from unlearnbench.bench.gpu_check.core import Check, Goal, median_seconds, step, train_setup
from unlearnbench.data.splits import Split
from unlearnbench.evaluation import predict


def shadow_args(check: Check, setting: str = "shadows") -> list[str]:
    """bench.lira's arguments for the SETTINGS entry `setting` (default: the ResNet-18 shadows of
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


@step(
    "small_shadows",
    "Shadow models for eval=full, Fashion-MNIST MLP, batched vs sequential",
    130,
    Goal("speedup", "batched / sequential shadow trainings per minute", ">=", 8, "{:.1f}x"),
)
def small_shadows(check: Check) -> dict:
    """bench.lira's CPU case on the GPU: shadow trainings per minute, sequential vs batched."""
    args = lira.parse_args(shadow_args(check, "small_shadows"))
    runs = {mode: lira.measure(args, batched=mode == "batched") for mode in ("sequential", "batched")}
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


@step(
    "inference",
    "Evaluation inference, Fashion-MNIST ResNet-18",
    15,
    Goal("img_s", "`predict`, images/s", ">=", 200_000, "{:,.0f}"),
)
def inference(check: Check) -> dict:
    """Evaluation inference: the project's `predict` over the whole training set, images/s."""
    setup, _ = train_setup(check, "fmnist", [])
    rt = setup.runtime
    split = Split("train", setup.x, setup.y, torch.arange(len(setup.y)))
    model = train.new_model(setup).eval()
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


@step(
    "shadows",
    "Shadow models for eval=full, Fashion-MNIST",
    110,
    Goal("models_per_minute", "shadow models per minute", ">=", 20, "{:.1f}"),
)
def shadows(check: Check) -> dict:
    """bench.lira: shadow models per minute of `eval=full` (batched shadows, fresh cache)."""
    args = lira.parse_args(shadow_args(check))
    r = lira.measure(args, batched=True)
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
