"""Tests for the report tool: aggregation numbers, reference rows, diverged runs, files and the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from unlearnbench.report.aggregate import (
    AVG_GAP_METRICS,
    aggregate,
    find_result_files,
    load_runs,
    run_gap,
    sanitize_filename,
    summarize,
)
from unlearnbench.report.cli import main
from unlearnbench.report.render import render_latex, render_markdown

METRICS = ("forget_acc", "retain_acc", "val_acc", "test_acc", "mia_efficacy", "mia_loss")
METRIC_INFO = {
    "forget_acc": {"direction": "closer to retrain", "ideal": "retrain value"},
    "mia_loss": {"direction": "closer to 0.5", "ideal": 0.5},
}
SEEDS = (0, 1, 2)
RANDOM = {"scenario": "random", "ratio": 0.1, "classes": None, "size": 129}
CLASSWISE = {"scenario": "class", "ratio": None, "classes": [3], "size": 180}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(rng: np.random.Generator) -> dict[str, float]:
    return {m: float(rng.uniform(0.05, 0.95)) for m in METRICS}


def _results(method, seed, forget, metrics, original, retrain, unlearn_s, status="ok"):
    diverged = status != "ok"
    return {
        "status": status,
        **({"reason": "loss became NaN"} if diverged else {}),
        "method": method,
        "dataset": "digits",
        "model": "small_cnn",
        "seed": seed,
        "forget": forget,
        "metrics": {m: None for m in metrics} if diverged else metrics,
        "original": {"metrics": original},
        "retrain": {"metrics": retrain},
        "gap": {} if diverged else {m: metrics[m] - retrain[m] for m in metrics},
        "metric_info": METRIC_INFO,
        "time_s": {"original": 1.0, "retrain": 0.9 + seed, "unlearn": unlearn_s, "eval": 0.1},
        "cache": {},
        "env": {},
    }


def build_tree(root: Path) -> dict:
    """Two Hydra-like sweep dirs (random 10 %, class 3); ga seed 2 of the random sweep diverged.

    Returns the values written, keyed by (scenario, method, seed), for the numpy references.
    """
    rng = np.random.default_rng(0)
    written: dict = {"retrain": {}, "original": {}, "runs": {}}
    methods = {"random": ("ft", "ga", "retrain"), "class": ("ft", "ga")}
    for forget in (RANDOM, CLASSWISE):
        scen = forget["scenario"]
        job = 0
        for seed in SEEDS:
            retrain, original = _metrics(rng), _metrics(rng)
            written["retrain"][scen, seed] = retrain
            written["original"][scen, seed] = original
            for method in methods[scen]:
                status = "diverged" if (scen, method, seed) == ("random", "ga", 2) else "ok"
                metrics, unlearn_s = _metrics(rng), float(rng.uniform(0.1, 2.0))
                written["runs"][scen, method, seed] = (metrics, unlearn_s, status)
                run_dir = root / f"multirun_{scen}" / "2024-01-01" / "12-00-00" / str(job)
                run_dir.mkdir(parents=True)
                data = _results(method, seed, forget, metrics, original, retrain, unlearn_s, status)
                (run_dir / "results.json").write_text(json.dumps(data))
                job += 1
    return written


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "outputs"
    return root, build_tree(root)


def summaries_of(root: Path):
    files, _ = find_result_files([root])
    runs, warnings = load_runs(files)
    assert not warnings
    return {s.key.scenario: s for s in aggregate(runs)}


def row_named(summary, name):
    return next(r for r in summary.rows if r.name == name)


def test_method_mean_std_match_numpy(tree):
    root, written = tree
    ft = row_named(summaries_of(root)["random"], "ft")
    for m in METRICS:
        values = [written["runs"]["random", "ft", s][0][m] for s in SEEDS]
        assert ft.metrics[m].mean == pytest.approx(np.mean(values))
        assert ft.metrics[m].std == pytest.approx(np.std(values, ddof=1))
    rte = [written["runs"]["random", "ft", s][1] for s in SEEDS]
    assert ft.rte.mean == pytest.approx(np.mean(rte))
    assert ft.rte.std == pytest.approx(np.std(rte, ddof=1))


def test_reference_rows_first_and_one_per_seed(tree):
    root, written = tree
    summary = summaries_of(root)["random"]  # 3 methods share each seed's references
    assert [r.name for r in summary.rows[:2]] == ["Retrain", "Original"]
    assert [r.name for r in summary.rows[2:]] == ["ft", "ga", "retrain"]
    for name, store in (("Retrain", "retrain"), ("Original", "original")):
        row = row_named(summary, name)
        assert row.n_seeds == len(SEEDS)
        values = [written[store]["random", s]["test_acc"] for s in SEEDS]
        assert row.metrics["test_acc"].n == 3
        # Counting a seed three times would shrink the ddof=1 std.
        assert row.metrics["test_acc"].std == pytest.approx(np.std(values, ddof=1))
        assert row.metrics["test_acc"].mean == pytest.approx(np.mean(values))
    retrain_time = [0.9 + s for s in SEEDS]
    assert row_named(summary, "Retrain").rte.mean == pytest.approx(np.mean(retrain_time))


def test_gaps_and_avg_gap(tree):
    root, written = tree
    summary = summaries_of(root)["class"]
    ft = row_named(summary, "ft")
    gaps = {
        s: {m: written["runs"]["class", "ft", s][0][m] - written["retrain"]["class", s][m] for m in METRICS}
        for s in SEEDS
    }
    for m in METRICS:
        assert ft.gaps[m].mean == pytest.approx(np.mean([gaps[s][m] for s in SEEDS]))
    per_run = [np.mean([abs(gaps[s][m]) for m in AVG_GAP_METRICS]) for s in SEEDS]
    assert ft.avg_gap.mean == pytest.approx(np.mean(per_run))
    assert ft.avg_gap.std == pytest.approx(np.std(per_run, ddof=1))
    original = row_named(summary, "Original")
    orig_gap = [written["original"]["class", s]["retain_acc"] - written["retrain"]["class", s]["retain_acc"]
                for s in SEEDS]
    assert original.gaps["retain_acc"].mean == pytest.approx(np.mean(orig_gap))
    assert not row_named(summary, "Retrain").gaps


def test_gap_falls_back_to_metrics_minus_retrain(tmp_path):
    data = _results("ft", 0, RANDOM, {"forget_acc": 0.7}, {"forget_acc": 1.0}, {"forget_acc": 0.6}, 0.5)
    data.pop("gap")
    (tmp_path / "results.json").write_text(json.dumps(data))
    (run,), _ = load_runs([tmp_path / "results.json"])
    assert run_gap(run)["forget_acc"] == pytest.approx(0.1)


def test_diverged_runs_are_counted_and_excluded(tree):
    root, written = tree
    summary = summaries_of(root)["random"]
    ga = row_named(summary, "ga")
    assert (ga.n_seeds, ga.n_diverged) == (3, 1)
    values = [written["runs"]["random", "ga", s][0]["retain_acc"] for s in (0, 1)]
    assert ga.metrics["retain_acc"].n == 2
    assert ga.metrics["retain_acc"].mean == pytest.approx(np.mean(values))
    # The diverged run still contributes its seed's Retrain reference.
    assert row_named(summary, "Retrain").n_seeds == 3
    md = render_markdown([summary])
    assert "| ga — diverged (1/3 seeds) |" in md
    assert "loss became NaN" in md


def test_markdown_cell_format_and_legend(tree):
    root, written = tree
    summary = summaries_of(root)["class"]
    md = render_markdown([summary])
    vals = [written["runs"]["class", "ft", s][0]["forget_acc"] for s in SEEDS]
    gaps = [v - written["retrain"]["class", s]["forget_acc"] for v, s in zip(vals, SEEDS)]
    expected = (f"{100 * np.mean(vals):.1f} ± {100 * np.std(vals, ddof=1):.1f} "
                f"({100 * np.mean(gaps):+.1f})")
    ft_line = next(line for line in md.splitlines() if line.startswith("| ft |"))
    assert expected in ft_line
    assert "3 seeds" in md and "scenario class (classes=3)" in md
    assert "forget_acc: closer to retrain (ideal: retrain value)" in md
    assert "mia_loss: closer to 0.5 (ideal: 0.5)" in md
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    assert "Avg Gap" in header and "RTE (s)" in header


def test_single_seed_has_no_std(tmp_path):
    data = _results("ft", 0, RANDOM, {"forget_acc": 0.5}, {"forget_acc": 0.9}, {"forget_acc": 0.4}, 0.2)
    (tmp_path / "results.json").write_text(json.dumps(data))
    runs, _ = load_runs([tmp_path / "results.json"])
    (summary,) = aggregate(runs)
    assert row_named(summary, "ft").metrics["forget_acc"].std == 0.0
    assert "50.0 ± – (+10.0)" in render_markdown([summary])


def test_summarize_skips_missing_values():
    stat = summarize([0.2, None, 0.4, float("nan")])
    assert (stat.n, stat.mean) == (2, pytest.approx(0.3))
    assert stat.std == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert summarize([None]) is None


def test_latex_uses_booktabs_and_pm(tree):
    root, _ = tree
    tex = render_latex(list(summaries_of(root).values()))
    assert tex.count(r"\begin{tabular}") == 2
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(rule) >= 2
    assert r"$\pm$" in tex
    assert r"forget\_acc" in tex and "forget_acc" not in tex.replace(r"forget\_acc", "")
    assert "±" not in tex


def test_cli_writes_all_files(tree, tmp_path, capsys):
    root, written = tree
    out = tmp_path / "report_out"
    assert main([str(root), "--out", str(out)]) == 0
    printed = [Path(p) for p in capsys.readouterr().out.split()]
    names = sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in printed) == names
    for name in ("report.md", "report.csv", "report.tex"):
        assert name in names
    pngs = [out / n for n in names if n.endswith(".png")]
    assert len(pngs) == 4  # 2 settings x (metrics, forget_vs_test)
    assert sum(n.startswith("metrics_") for n in names) == 2
    for png in pngs:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", png.name)
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
    import matplotlib.image

    assert matplotlib.image.imread(pngs[0]).ndim == 3

    with open(out / "report.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == (2 + 3) + (2 + 2)  # references + methods per setting
    ga = next(r for r in rows if r["scenario"] == "random" and r["method"] == "ga")
    assert (ga["n_seeds"], ga["n_diverged"]) == ("3", "1")
    ft = next(r for r in rows if r["scenario"] == "random" and r["method"] == "ft")
    vals = [written["runs"]["random", "ft", s][0]["val_acc"] for s in SEEDS]
    assert float(ft["val_acc_mean"]) == pytest.approx(np.mean(vals))
    assert float(ft["val_acc_std"]) == pytest.approx(np.std(vals, ddof=1))
    assert {"forget_acc_gap_mean", "avg_gap_mean", "rte_s_mean"} <= set(ft)


def test_cli_default_out_is_first_path_and_no_double_counting(tree, capsys):
    root, _ = tree
    sweep = root / "multirun_random"
    # The same runs reached twice (sweep dir and one of its jobs) count once.
    assert main([str(sweep), str(sweep / "2024-01-01" / "12-00-00" / "0")]) == 0
    assert (sweep / "report.md").is_file()
    with open(sweep / "report.csv", newline="") as fh:
        ft = next(r for r in csv.DictReader(fh) if r["method"] == "ft")
    assert ft["n_seeds"] == "3"


def test_cli_empty_dir_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error:") and "no results.json" in err


def test_malformed_json_is_warned_and_skipped(tree, tmp_path, capsys):
    root, _ = tree
    bad = root / "broken" / "results.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad) in warnings[0]
    assert (out / "report.md").is_file()


def test_only_malformed_files_is_a_user_error(tmp_path, capsys):
    (tmp_path / "results.json").write_text("[1, 2")
    assert main([str(tmp_path)]) == 2
    assert "no readable results.json" in capsys.readouterr().err


def test_sanitize_filename():
    assert sanitize_filename("cifar 10/resnet:18_class_classes3,5") == "cifar_10_resnet_18_class_classes3_5"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", sanitize_filename("a b/c..d"))


def test_results_table_checks_the_mnemonic_claim_per_seed(tmp_path):
    """scripts/results_table.py: forget acc <= 1% and remaining test acc within 3 points -> met, else NOT met."""
    table = load_script("results_table")
    cases = {0: (0.005, 0.90, 0.875), 1: (0.02, 0.90, 0.90), 2: (0.0, 0.90, 0.86)}  # seed: forget, test before/after
    for seed, (forget, before, after) in cases.items():
        (tmp_path / f"seed{seed}").mkdir()
        (tmp_path / f"seed{seed}" / "results.json").write_text(json.dumps(
            {"seed": seed, "metrics": {"forget_acc": forget, "test_acc": after},
             "original": {"metrics": {"test_acc": before}}}))
    lines = table.claim_lines(tmp_path)
    assert [line.endswith("-> met") for line in lines] == [True, False, False]
    assert "forget accuracy 2.0%" in lines[1] and "down 4.0 points" in lines[2]
