"""The GPU check's steps that run the method: IMU's influence and its unlearning stage, the mission's command
end to end, and one seed of the SalUn protocol projected from the rates measured. The runs go through the
public `compose` + `run`, as a user's do."""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from unittest import mock

import torch

from unlearnbench import compose, run
from unlearnbench.bench import imu
from unlearnbench.bench.gpu_check.core import Check, Goal, median_seconds, num, step
from unlearnbench.evaluation import ShadowContext, predict
from unlearnbench.methods.registry import method_classes
from unlearnbench.sweeps.protocols import PROTOCOLS

# IMU's fast path: the backbone is a fixed function, so its features of D_f are computed once.
IMU_FAST_PATH = ["method=imu", "method.update_scope=fc", "method.bn_mode=eval", "method.augment=false"]
# The stage's runs: an original of one epoch (the stage's cost does not depend on its weights), accuracies only.
IMU_STAGE_RUN = ["recipe.epochs=1", "eval=fast"]


@contextmanager
def shadow_contexts():
    """The ShadowContext of every run inside the block (its runtime, splits, models and method), in order."""
    built: list[ShadowContext] = []
    init = ShadowContext.__init__

    def capture(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)

    with mock.patch.object(ShadowContext, "__init__", capture):
        yield built


@step(
    "imu_influence",
    "IMU influence",
    25,
    Goal("speedup", "closed form / per-sample loop, samples/s (runner precision)", ">=", 1000, "{:,.0f}x"),
    Goal("max_rel_diff", "closed form vs loop, max |diff| / max |I| (float32)", "<=", 1e-4, "{:.1e}"),
)
def imu_influence(check: Check) -> dict:
    """bench.imu: closed-form influence vs the authors' per-sample backward loop, first in exact
    float32 (their agreement), then as the runner runs IMU (bf16 autocast, TF32, its batch size): the speed-up."""
    argv = ["--device", check.device.type, *check.setting["imu_bench"]]
    if not check.args.tiny:
        argv += ["--data-dir", str(check.args.data_dir)]
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        exact = imu.measure(imu.parse_args(argv))
        args = imu.parse_args([*argv, *check.setting["imu_bench_runner"]])
        r = imu.measure(args)
    finally:  # bench.imu sets TF32 for its own run; the later steps run as the runner does
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


@step(
    "imu_stage",
    "IMU stage, fast path",
    25,
    Goal("ratio", "IMU stage / one forward pass over D_f", "<=", 1.5, "{:.2f}x"),
)
def imu_stage(check: Check) -> dict:
    """The whole IMU unlearning stage on the fast path (the run's own `time_s.unlearn`, the method alone) vs
    one forward pass (`predict`) over D_f; the first run trains the original into the cache and warms up."""
    cache = check.fresh_dir()
    overrides = [*check.common(cache), *check.dataset("fmnist"), *IMU_FAST_PATH, *IMU_STAGE_RUN]
    cfg = compose(overrides, output_dir=cache / "run")
    repeats = min(check.repeats, 3)  # each run loads the data and evaluates: the step's budget is 25 s
    with shadow_contexts() as built:
        times = [
            run(compose(overrides, output_dir=cache / f"run{i}"))["time_s"]["unlearn"]
            for i in range(repeats + 1)
        ]
    context = built[-1]
    rt, forget, model = context.runtime, context.splits.forget, context.models["original"].eval()
    t_imu = statistics.median(times[1:])
    t_fwd = median_seconds(lambda: predict(model, forget, rt), rt.device, check.repeats)
    return {
        "ratio": t_imu / t_fwd,
        "imu_s": t_imu,
        "forward_s": t_fwd,
        "ratio_note": f"{t_imu * 1e3:.1f} ms vs {t_fwd * 1e3:.1f} ms",
        "setup": (
            f"{cfg.dataset.name} / {cfg.model.name}, D_f = {len(forget):,} images, "
            f"{' '.join(IMU_FAST_PATH)} (feature cache: {context.method.uses_feature_cache()}), "
            f"{rt.precision}, the runs' unlearning stage (`unlearn {' '.join(IMU_STAGE_RUN)}`), median of "
            f"{repeats} after a warm-up run; forward pass = the project's `predict` (batches of "
            f"{rt.eval_batch_size})"
        ),
    }


def expected_metrics(results: dict) -> list[str]:
    """Every metric column that applies to the run (split accuracies only for the splits it has)."""
    sizes = results["sizes"]
    return [k for k in results["metric_info"] if not k.endswith("_acc") or k.removesuffix("_acc") in sizes]


def mission_overrides(check: Check) -> list[str]:
    return ["method=imu", *check.dataset("cifar"), "forget_ratio=0.1", *check.setting["mission"]]


@step(
    "mission",
    "Mission command, method=imu on CIFAR-10",
    150,  # run twice: fresh cache, then with the references cached
    Goal("metrics_complete", "every metric (unlearned, original, Retrain)", "true"),
    Goal("gaps_complete", "every gap to Retrain", "true"),
    Goal("stage_times_complete", "stage times (original, retrain, unlearn, eval, total)", "true"),
    Goal("on_check_device", "the default trainer=auto runs on the GPU", "true"),
    Goal("eval_share", "evaluation share of the run's time (fresh cache)", "<=", 0.15, "{:.0%}"),
    Goal("cached_eval_s", "evaluation of a run whose references are cached", "<=", 10, "{:.1f} s"),
)
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
    figures = mission_figures(results)
    times = results["time_s"]
    return {
        "eval_share": times["eval"] / times["total"],
        "eval_share_note": f"evaluation {times['eval']:.1f} s of {times['total']:.1f} s, {results['eval_workers']} "
        "evaluation workers",
        "cached_eval_s": cached["time_s"]["eval"],
        "cached_eval_s_note": f"run {cached['time_s']['total']:.1f} s in all",
        **figures,
        "on_check_device": torch.device(results["env"]["device"]).type == check.device.type,
        "on_check_device_note": f"trainer=auto chose {results['env']['device']}",
        "setup": (
            f"unlearn {' '.join(overrides)} trainer=auto (fresh model cache, {results['env']['device_name']}); "
            f"stage seconds { ({k: round(v, 1) for k, v in times.items() if v is not None}) }; "
            f"metrics (unlearned / Retrain / gap): "
            + ", ".join(
                f"{k} {num(v['unlearned'])} / {num(v['retrain'])} / {num(v['gap'])}"
                for k, v in figures["metrics"].items()
            )
        ),
    }


def mission_figures(results: dict) -> dict:
    """Whether the run has every metric, gap and stage time; its metric table, stage times and split sizes."""
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
        "metrics_complete": metrics_ok,
        "gaps_complete": complete(results["gap"], gaps),
        "stage_times_complete": stages_ok,
        "time_s": times,
        "metrics": table,
        "sizes": results["sizes"],
        "run_status": results["status"],
    }


# SalUn's Table 1 rows besides Retrain, and IMU, as the protocol runs them (unlearnbench/sweeps/protocols.py).
SALUN_SEED_METHODS = tuple(PROTOCOLS["salun_cifar10"].methods())


@step(
    "projected_salun_seed",
    "Projected SalUn seed (CIFAR-10, original + Retrain at 182 epochs, the protocol's methods, evaluation)",
    20,
    Goal("seconds", "projected wall time of one seed", "<=", 480, "{:,.0f} s"),
)
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
        needs = method_classes()[name].needs & {"forget", "retain"}
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
