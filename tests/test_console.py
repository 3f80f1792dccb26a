"""The table `unlearn` prints: fits 100 columns, one unit, each column's ideal, doing nothing's Avg Gap."""

from __future__ import annotations

from unlearnbench import run
from unlearnbench.cli.console import WIDTH, format_table


def test_the_default_table_fits_100_columns_and_says_what_is_ideal(make_cfg):
    results = run(make_cfg(["recipe.epochs=2"]))  # the embedded default: digits, IMU, eval=standard
    table = format_table(results)
    lines = table.splitlines()
    assert WIDTH == 100 and max(len(line) for line in lines) <= 100, table
    header, ideal, original, method = lines[:4]
    # the standard metrics' columns, accuracies first (a metric added later adds a column)
    cols = header.split()
    assert cols[:4] == ["forget", "retain", "val", "test"] and "AvgGap" in cols[4:]
    assert ideal.split()[0] == "ideal"
    ideals = dict(zip(cols, ideal.split()[1:], strict=True))
    assert {c: ideals[c] for c in ("forget", "retain", "val", "test", "MIA-eff")} == dict.fromkeys(
        ("forget", "retain", "val", "test", "MIA-eff"), "=Retrain"
    )
    assert ideals["MIA-loss"] == ideals["MIA-ent"] == "50.0" and ideals["AvgGap"] == "0.0"
    assert original.startswith("original") and method.startswith("imu")
    # The original's own Avg Gap sits beside the method's, in the same unit (percentage points).
    at = 1 + cols.index("AvgGap")  # the row's label comes first
    assert float(original.split()[at]) == round(100 * results["original"]["metrics"]["avg_gap"], 2)
    assert float(method.split()[at]) == round(100 * results["metrics"]["avg_gap"], 2)
    gap_row = next(line for line in lines if line.startswith("gap to retrain"))
    # gaps only where Retrain is the ideal (not for the 50 % attacks)
    assert len(gap_row.split()) == 3 + sum(v == "=Retrain" for v in ideals.values())


def test_a_flagged_mia_efficacy_is_explained_under_the_table(make_cfg):
    results = run(
        make_cfg(["forget=class", "forget.classes=[0]", "method=ft", "method.epochs=2", "recipe.epochs=4"])
    )
    flagged = results["retrain"]["metrics"]["mia_efficacy_extrapolated"] > 0.5
    notes = [line for line in format_table(results).splitlines() if line.startswith("! MIA-eff unreliable")]
    assert bool(notes) == flagged


def test_a_method_that_did_not_unlearn_is_marked_with_its_reason(make_cfg):
    # Class 0 forgotten: Retrain's forget accuracy is far from the original's, so doing nothing is flagged.
    results = run(make_cfg(["method=none", "recipe.epochs=2", "forget=class", "forget.classes=[0]"]))
    lines = format_table(results).splitlines()
    assert any(line.startswith("none! ") for line in lines)
    (note,) = [line for line in lines if line.startswith("! none did not unlearn")]
    assert "forget accuracy" in note and "original's" in note
    ga = run(make_cfg(["method=ga", "method.lr=0.05", "method.epochs=3", "recipe.epochs=2"], subdir="ga"))
    assert ga["metrics"]["forget_acc"] < ga["original"]["metrics"]["forget_acc"] - 0.05
    assert not [line for line in format_table(ga).splitlines() if "did not unlearn" in line]


def test_tiny_splits_are_warned_about_and_no_retrain_means_no_retrain_ideal(make_cfg, caplog):
    with caplog.at_level("WARNING", logger="unlearnbench.runner"):
        results = run(
            make_cfg(["method=none", "recipe.epochs=1", "forget_ratio=0.995", "eval.retrain=false"])
        )
    warned = [r.getMessage() for r in caplog.records if "samples" in r.getMessage()]
    assert any(m.startswith("split retain has only") for m in warned), warned
    ideal = next(line for line in format_table(results).splitlines() if line.startswith("ideal"))
    assert "=Retrain" not in ideal
    caplog.clear()
    with caplog.at_level("WARNING", logger="unlearnbench.runner"):
        run(make_cfg(["method=none", "recipe.epochs=1"], subdir="normal"))
    assert not [r for r in caplog.records if "samples" in r.getMessage()]


def test_no_forgetting_verdict_where_retrain_does_not_move_either():
    from unlearnbench.report.verdicts import did_not_unlearn

    original = {"forget_acc": 0.99, "avg_gap": 0.02}
    same = {"forget_acc": 0.99, "avg_gap": 0.01}
    # 130 forget samples: two standard errors of the difference are 3.2 points; Retrain 1.5 points away is inside
    assert did_not_unlearn(same, original, retrain={"forget_acc": 0.975}, forget_size=130) == []
    assert did_not_unlearn(same, original, retrain={"forget_acc": 0.50}, forget_size=130)
    assert did_not_unlearn({"forget_acc": 0.6, "avg_gap": 0.03}, original, retrain={"forget_acc": 0.5}) == [
        "Avg Gap 3.00 vs doing nothing's 2.00"
    ]
