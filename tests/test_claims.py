"""The claim checks of docs/results.md: paired differences over seeds judged against their noise."""

from __future__ import annotations

import pytest

from unlearnbench.report.claims import (
    NOT_DISTINGUISHABLE,
    gradtau_claim,
    imu_claim,
    interpolate,
    judge,
    mnemonic_claim,
    no_op_lines,
)


def _result(seed: int, method: str = "m", original: dict | None = None, info: dict | None = None, **metrics):
    return {
        "status": "ok",
        "seed": seed,
        "method": method,
        "metrics": metrics,
        "original": {"metrics": original or {"test_acc": 0.90}},
        "metric_info": info or {},
    }


def test_a_difference_within_two_standard_errors_is_not_distinguishable():
    assert judge([0.05, 0.06, 0.04]).verdict == "holds"
    assert judge([-0.05, -0.06, -0.04]).verdict == "does NOT hold"
    # Mean 0.01, seed std 0.05 over 3 seeds: SE 0.029, so 0.01 is inside 2 SE.
    spread = judge([0.06, -0.04, 0.01])
    assert spread.verdict == NOT_DISTINGUISHABLE and spread.se == pytest.approx(0.05 / 3**0.5)
    # One seed: the subsample noise alone decides.
    assert judge([0.03], [0.02]).verdict == NOT_DISTINGUISHABLE
    assert judge([0.05], [0.02]).verdict == "holds"
    assert "2 SE = 5.8" in spread.text() and "seed std 5.0" in spread.text()


def test_gradtau_claim_inside_the_subsample_noise_never_reads_holds():
    """∇τ 48.6 vs FT 53.1 (a single draw's std 2.5 points, as measured): within the noise; GA far away."""
    info = {"mia_loss": {"draws": 1}}
    runs = []
    for seed, (gt, ft) in enumerate([(0.486, 0.531), (0.517, 0.554)]):
        runs += [
            _result(seed, "gradtau", info=info, mia_loss=gt, mia_loss_std=0.025),
            _result(seed, "ga", info=info, mia_loss=0.81, mia_loss_std=0.025),
            _result(seed, "ft", info=info, mia_loss=ft, mia_loss_std=0.025),
        ]
    lines = gradtau_claim(runs, "random")
    ga_line, ft_line = lines[-2:]
    assert ga_line.startswith("- random, ∇τ closer to 50 than GA") and ga_line.endswith("-> holds")
    assert ft_line.endswith(f"-> {NOT_DISTINGUISHABLE}") and "subsample std 3.5" in ft_line
    # Averaging 10 draws shrinks the subsample noise by sqrt(10); the seed std stays.
    ten = [{**r, "metric_info": {"mia_loss": {"draws": 10}}} for r in runs]
    assert "subsample std 1.1" in gradtau_claim(ten, "random")[-1]


def test_mnemonic_claim_reads_the_forgotten_class_test_images():
    original = {"test_acc": 0.90}
    runs = [
        # The training images of the class still classified (forget_acc), its test images not: E_F is on these.
        _result(0, original=original, forget_acc=0.98, test_forget_acc=0.0, test_acc=0.89),
        _result(1, original=original, forget_acc=0.97, test_forget_acc=0.001, test_acc=0.895),
    ]
    lines = mnemonic_claim(runs, "class 0")
    assert "forgotten class's test accuracy 0.0 %" in lines[0]
    assert lines[-1].endswith("the claim (both): holds")
    bad = [_result(s, original=original, forget_acc=0.0, test_forget_acc=0.5, test_acc=0.9) for s in (0, 1)]
    assert mnemonic_claim(bad, "class 0")[-1].endswith("does NOT hold")


def test_imu_claim_matches_ga_at_the_same_forget_accuracy_and_judges_over_seeds():
    assert interpolate([(0.2, 0.5), (0.6, 0.9)], 0.5) == pytest.approx(0.8)
    assert interpolate([(0.2, 0.5), (0.6, 0.9)], 0.7) is None
    ga = [
        _result(s, "ga", forget_acc=f, test_acc=t) for s in (0, 1) for f, t in ((0.2, 0.50), (0.6, 0.82))
    ]  # GA at forget 0.5: test 0.74, utility loss 0.16
    imu = [_result(s, "imu", forget_acc=0.5, test_acc=t) for s, t in ((0, 0.85), (1, 0.86))]
    lines = imu_claim(imu, ga, "random")
    assert "utility loss 5.0 vs 16.0 points" in lines[0] and lines[-1].endswith("-> holds")
    worse = [_result(s, "imu", forget_acc=0.5, test_acc=t) for s, t in ((0, 0.78), (1, 0.775))]
    assert imu_claim(worse, ga, "random")[-1].endswith("does NOT hold")  # 12 points > 0.7 x 16
    (line,) = imu_claim([_result(0, "imu", forget_acc=0.9, test_acc=0.85)], ga, "random")
    assert "cannot be matched" in line


def test_tuned_methods_that_leave_forget_accuracy_alone_are_flagged():
    original = {"forget_acc": 0.998, "test_acc": 0.45}
    runs = [
        _result(1, "ga", original=original, forget_acc=0.996),
        _result(2, "ga", original=original, forget_acc=0.990),
        _result(1, "scrub", original=original, forget_acc=0.60),
        _result(1, "none", original=original, forget_acc=0.998),
    ]
    (line,) = no_op_lines(runs, "random 10 %")
    assert "tuned ga" in line and "no-op" in line


def test_a_tuned_no_op_says_whether_its_curve_could_forget():
    from unlearnbench.report.claims import curve_verdict

    never = [(1e-4, 1.0, 0.31), (1e-2, 0.998, 0.30)]
    assert "never forgets" in curve_verdict(never)
    only_worse = [(1e-4, 1.0, 0.31), (1e-2, 0.08, 0.56)]  # forgets only by collapsing
    assert "forgets only where it does worse" in curve_verdict(only_worse)
    missed = [(1e-4, 1.0, 0.31), (1e-3, 0.6, 0.12), (1e-2, 0.08, 0.56)]
    assert "a tuning miss" in curve_verdict(missed)
