"""Tests for the report tool: aggregation numbers, reference rows, diverged runs, files and the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from unlearnbench.report.aggregate import aggregate
from unlearnbench.report.cli import main
from unlearnbench.report.csv_export import render_csv
from unlearnbench.report.figures import forget_vs_test_figure, gap_figure, gap_panels
from unlearnbench.report.latex import render_latex
from unlearnbench.report.markdown_report import render_markdown
from unlearnbench.report.runs import find_result_files, load_runs, sanitize_filename
from unlearnbench.report.stats import run_gap, summarize

METRICS = ("forget_acc", "retain_acc", "val_acc", "test_acc", "mia_efficacy", "mia_loss")
COMPONENTS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")
METRIC_INFO = {
    "forget_acc": {"direction": "closer to retrain", "ideal": "retrain value"},
    "retain_acc": {"direction": "higher (closer to retrain)", "ideal": "retrain value"},  # older runs' text
    "mia_loss": {"direction": "closer to 0.5", "ideal": 0.5},
    "avg_gap": {"direction": "lower", "ideal": 0.0, "components": list(COMPONENTS)},
}
SEEDS = (0, 1, 2)
RANDOM = {"scenario": "random", "ratio": 0.1, "classes": None, "size": 129}
CLASSWISE = {"scenario": "class", "ratio": None, "classes": [3], "size": 180}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(rng: np.random.Generator) -> dict[str, float]:
    return {m: float(rng.uniform(0.05, 0.95)) for m in METRICS}


def _avg_gap(metrics, retrain, components=COMPONENTS):
    """What the runner stores as metrics.avg_gap."""
    return float(np.mean([abs(metrics[c] - retrain[c]) for c in components]))


def _results(method, seed, forget, metrics, original, retrain, unlearn_s, status="ok"):
    diverged = status != "ok"
    stored = (
        {**metrics, "avg_gap": _avg_gap(metrics, retrain)} if set(COMPONENTS) <= set(metrics) else metrics
    )
    return {
        "status": status,
        **({"reason": "loss became NaN"} if diverged else {}),
        "method": method,
        "dataset": "digits",
        "model": "small_cnn",
        "seed": seed,
        "forget": forget,
        "metrics": {m: None for m in stored} if diverged else stored,
        "original": {"metrics": original},
        "retrain": {"metrics": retrain},
        "gap": {} if diverged else {m: metrics[m] - retrain[m] for m in metrics if m in retrain},
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
    assert [r.name for r in summary.rows[2:]] == ["ft", "ga"]  # the 'retrain' method runs are in Retrain
    for name, store in (("Retrain", "retrain"), ("Original", "original")):
        row = row_named(summary, name)
        assert row.n_seeds == len(SEEDS)
        values = [written[store]["random", s]["test_acc"] for s in SEEDS]
        assert row.metrics["test_acc"].n == 3
        # Counting a seed three times would shrink the ddof=1 std.
        assert row.metrics["test_acc"].std == pytest.approx(np.std(values, ddof=1))
        assert row.metrics["test_acc"].mean == pytest.approx(np.mean(values))
    # Per seed, the longest time spent obtaining the model: a reference's time_s.retrain or the
    # 'retrain' run's unlearning (which trained it when it was not in the cache).
    retrain_time = [max(0.9 + s, written["runs"]["random", "retrain", s][1]) for s in SEEDS]
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
    per_run = [np.mean([abs(gaps[s][m]) for m in COMPONENTS]) for s in SEEDS]
    assert ft.avg_gap.mean == pytest.approx(np.mean(per_run))
    assert ft.avg_gap.std == pytest.approx(np.std(per_run, ddof=1))
    original = row_named(summary, "Original")
    orig_gap = [
        written["original"]["class", s]["retain_acc"] - written["retrain"]["class", s]["retain_acc"]
        for s in SEEDS
    ]
    assert original.gaps["retain_acc"].mean == pytest.approx(np.mean(orig_gap))
    orig_avg = [_avg_gap(written["original"]["class", s], written["retrain"]["class", s]) for s in SEEDS]
    assert original.avg_gap.mean == pytest.approx(np.mean(orig_avg))
    assert original.avg_gap.std == pytest.approx(np.std(orig_avg, ddof=1))
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
    label = "ga !" if ga.no_unlearning else "ga"
    assert f"| {label} — diverged (1/3 seeds) |" in md
    assert "loss became NaN" in md


def test_markdown_cell_format_and_legend(tree):
    root, written = tree
    summary = summaries_of(root)["class"]
    md = render_markdown([summary])
    vals = [written["runs"]["class", "ft", s][0]["forget_acc"] for s in SEEDS]
    gaps = [v - written["retrain"]["class", s]["forget_acc"] for v, s in zip(vals, SEEDS)]
    expected = f"{100 * np.mean(vals):.1f} ± {100 * np.std(vals, ddof=1):.1f} ({100 * np.mean(gaps):+.1f})"
    ft_line = next(line for line in md.splitlines() if re.match(r"\| ft( !)? \|", line))
    assert expected in ft_line
    assert "3 seeds" in md and "scenario class (classes=3)" in md
    # One unit (percent) and one direction per metric, also for older runs' contradictory text.
    assert "- forget_acc: closer to Retrain\n" in md
    assert "- retain_acc: closer to Retrain\n" in md
    assert "- mia_loss: closer to 50 %\n" in md
    assert "0.5" not in md.split("## Legend")[1]
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
    tables, files = capsys.readouterr().out.split("\nwrote:\n")
    assert tables.count("| Method |") == 2  # each setting's table, in the terminal
    printed = [Path(p) for p in files.split()]
    names = sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in printed) == names
    for name in ("report.md", "report.csv", "report.tex"):
        assert name in names
    pngs = [out / n for n in names if n.endswith(".png")]
    assert len(pngs) == 4  # 2 settings x (gap_to_retrain, forget_vs_test)
    assert sum(n.startswith("gap_to_retrain_") for n in names) == 2
    for png in pngs:
        assert re.fullmatch(r"[A-Za-z0-9._-]+", png.name)
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
    import matplotlib.image

    assert matplotlib.image.imread(pngs[0]).ndim == 3

    with open(out / "report.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == (2 + 2) + (2 + 2)  # references + methods per setting ('retrain' runs merged)
    assert [r["method"] for r in rows if r["scenario"] == "random"] == ["Retrain", "Original", "ft", "ga"]
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


def write_runs(root: Path, datas) -> list:
    """Write each results dict to its own run dir; return the aggregated settings."""
    for i, data in enumerate(datas):
        (root / str(i)).mkdir(parents=True)
        (root / str(i) / "results.json").write_text(json.dumps(data))
    runs, warnings = load_runs(find_result_files([root])[0])
    assert not warnings
    return aggregate(runs)


def test_retrain_method_runs_merge_into_one_retrain_row(tree, tmp_path):
    root, written = tree
    summary = summaries_of(root)["random"]
    md = render_markdown([summary])
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table].count("| Retrain") == 1
    assert not any(
        line.lower().startswith("| retrain |") and not line.startswith("| Retrain") for line in table
    )
    assert [r for r in render_csv([summary]).splitlines() if ",retrain," in r.lower()] == [
        next(r for r in render_csv([summary]).splitlines() if ",Retrain,retrain," in r)
    ]
    assert [b.row for p in gap_panels(summary) for b in p.bars].count("Retrain") == len(gap_panels(summary))
    fig = forget_vs_test_figure(summary)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels.count("Retrain (reference)") == 1 and not any(lab.lower() == "retrain" for lab in labels)
    # The merged row's metrics are the references' (the same model as the 'retrain' runs).
    retrain = row_named(summary, "Retrain")
    assert retrain.metrics["test_acc"].mean == pytest.approx(
        np.mean([written["retrain"]["random", s]["test_acc"] for s in SEEDS])
    )


def test_retrain_rte_says_when_every_run_loaded_it_from_the_cache(tmp_path):
    datas = [
        _results(m, 0, RANDOM, {"forget_acc": 0.5}, {"forget_acc": 1.0}, {"forget_acc": 0.4}, 0.2)
        for m in ("ft", "retrain")
    ]
    for data in datas:
        data["cache"] = {"original": {"hit": True}, "retrain": {"hit": True}}
    (summary,) = write_runs(tmp_path / "cached", datas)
    assert "| 0.900 ± – (cache load) |" in render_markdown([summary])
    datas[0]["cache"]["retrain"]["hit"] = False  # the ft run trained it: its time is the real cost
    (summary,) = write_runs(tmp_path / "trained", datas)
    assert "| 0.900 ± – |" in render_markdown([summary])


def test_retrain_runs_without_references_still_make_the_retrain_row(tmp_path):
    # eval.retrain=false: no reference, only the 'retrain' method's own metrics.
    runs = [
        _results("retrain", s, RANDOM, {"forget_acc": 0.8 + s / 100}, {"forget_acc": 1.0}, {}, 5.0)
        for s in (0, 1)
    ]
    for data in runs:
        data["retrain"], data["gap"] = None, {}
    (summary,) = write_runs(tmp_path, runs)
    assert [r.name for r in summary.rows] == ["Retrain", "Original"]
    retrain = row_named(summary, "Retrain")
    assert retrain.metrics["forget_acc"].mean == pytest.approx(0.805)
    assert retrain.rte.mean == pytest.approx(5.0) and retrain.n_seeds == 2


def test_avg_gap_is_the_stored_value_with_the_configured_components(tmp_path):
    info = {
        **METRIC_INFO,
        "avg_gap": {"direction": "lower", "ideal": 0.0, "components": ["forget_acc", "test_acc"]},
    }
    datas = []
    for seed in (0, 1):
        retrain = {"forget_acc": 0.80, "test_acc": 0.90, "retain_acc": 0.95, "mia_efficacy": 0.2}
        original = {"forget_acc": 0.99, "test_acc": 0.92, "retain_acc": 0.99, "mia_efficacy": 0.1}
        metrics = {"forget_acc": 0.85 + seed / 100, "test_acc": 0.88, "retain_acc": 0.5, "mia_efficacy": 0.9}
        data = _results("ft", seed, RANDOM, metrics, original, retrain, 1.0)
        data["metrics"]["avg_gap"] = _avg_gap(metrics, retrain, ("forget_acc", "test_acc"))
        data["metric_info"] = info
        datas.append(data)
    (summary,) = write_runs(tmp_path, datas)
    assert row_named(summary, "ft").avg_gap.mean == pytest.approx(
        np.mean([(0.05 + 0.02) / 2, (0.06 + 0.02) / 2])
    )
    assert row_named(summary, "Original").avg_gap.mean == pytest.approx((0.19 + 0.02) / 2)
    assert row_named(summary, "Original").avg_gap.n == 2
    md = render_markdown([summary])
    assert "Avg Gap: mean of |gap to Retrain| over forget_acc, test_acc (" in md
    assert "avg_gap" not in md.split("## Legend")[0]  # its own column, not a metric column


def test_columns_follow_metric_info_order(tmp_path):
    data = _results(
        "ft",
        0,
        RANDOM,
        {"forget_acc": 0.5, "test_acc": 0.6, "zeta": 0.1, "alpha": 0.2},
        {"forget_acc": 1.0},
        {"forget_acc": 0.4},
        0.2,
    )
    (summary,) = write_runs(tmp_path / "a", [data])
    assert summary.metric_names == ["forget_acc", "test_acc", "alpha", "zeta"]  # METRIC_ORDER, then A-Z
    data["metric_info"] = {"zeta": {"order": 1}, "test_acc": {"order": 2}, "forget_acc": {"order": 3}}
    (summary,) = write_runs(tmp_path / "b", [data])
    assert summary.metric_names == ["zeta", "test_acc", "forget_acc", "alpha"]


def test_failed_runs_with_null_fields_are_listed_not_crashed_on(tmp_path):
    ok = _results(
        "ft",
        0,
        RANDOM,
        {"forget_acc": 0.5, "test_acc": 0.9},
        {"forget_acc": 1.0, "test_acc": 0.9},
        {"forget_acc": 0.4, "test_acc": 0.9},
        0.2,
    )
    failed = {
        "status": "failed",
        "reason": "CUDA out of memory",
        "method": "ft",
        "dataset": "digits",
        "model": "small_cnn",
        "seed": 1,
        "forget": RANDOM,
        "metrics": None,
        "original": None,
        "retrain": None,
        "gap": None,
        "metric_info": None,
        "time_s": None,
    }
    only_failed = {**failed, "method": "ga", "seed": 0, "reason": "config error"}
    (summary,) = write_runs(
        tmp_path, [ok, failed, {k: v for k, v in failed.items() if k != "metrics"} | {"seed": 2}, only_failed]
    )
    assert row_named(summary, "ft").status_note() == "failed (2/3 seeds)"
    assert row_named(summary, "ga").metrics == {}
    md = render_markdown([summary])
    assert "- ft, seed 1: failed — CUDA out of memory" in md
    assert "- ga, seed 0: failed — config error" in md
    assert "| ga — failed (1/1 seeds) |" in md
    render_latex([summary]), render_csv([summary])
    assert gap_figure(summary) is not None and forget_vs_test_figure(summary) is not None


def test_superclass_settings_are_kept_apart(tmp_path):
    datas = [
        _results(
            "ft",
            0,
            {"scenario": "superclass", "ratio": None, "superclass": sc},
            {"forget_acc": 0.1},
            {"forget_acc": 1.0},
            {"forget_acc": 0.0},
            0.2,
        )
        for sc in (3, 4)
    ]
    summaries = write_runs(tmp_path, datas)
    assert [s.key.forget for s in summaries] == ["superclass=3", "superclass=4"]


def flagged_setting(tmp_path):
    """Class-wise runs where Retrain (one seed) and mnemonic (both) have most of D_f outside the SVC's range."""
    info = {
        **METRIC_INFO,
        "mia_efficacy_extrapolated": {
            "direction": "diagnostic",
            "ideal": None,
            "flags": "mia_efficacy",
            "threshold": 0.5,
            "definition": "share of D_f outside the fitted range",
            "meaning": "the SVC extrapolates",
        },
    }
    accs = {"retain_acc": 0.99, "test_acc": 0.98}
    original = {"forget_acc": 1.0, "mia_efficacy": 0.1, "mia_efficacy_extrapolated": 0.0, **accs}
    datas = []
    for method, mia, outside in (("mnemonic", 0.0, 1.0), ("ft", 1.0, 0.0)):
        for seed in (0, 1):
            metrics = {"forget_acc": 0.0, "mia_efficacy": mia, "mia_efficacy_extrapolated": outside, **accs}
            retrain = {
                "forget_acc": 0.0,
                "mia_efficacy": 1.0,
                "mia_efficacy_extrapolated": 0.9 if seed else 0.2,
                **accs,
            }
            data = _results(method, seed, CLASSWISE, metrics, original, retrain, 0.1)
            data["metric_info"] = info
            datas.append(data)
    (summary,) = write_runs(tmp_path, datas)
    return summary


def test_extrapolated_mia_efficacy_is_marked_and_explained(tmp_path):
    summary = flagged_setting(tmp_path)
    assert "mia_efficacy_extrapolated" not in summary.metric_names
    md = render_markdown([summary])
    table = [line.split(" | ") for line in md.splitlines() if line.startswith("| ")]
    header = [cell.strip("| ") for cell in table[0]]
    cells = {row[0][2:]: row[header.index("mia_efficacy")] for row in table[1:]}
    assert cells["mnemonic"].endswith(" †") and cells["Retrain"].endswith(" †")
    assert "†" not in cells["ft"] and "†" not in cells["Original"]
    avg_gap = {row[0][2:]: row[header.index("Avg Gap")] for row in table[1:]}
    assert avg_gap["ft"].endswith(" †") and avg_gap["Retrain"] == "–"
    note = next(line for line in md.splitlines() if line.startswith("- † mia_efficacy"))
    assert "Retrain 1/2 seeds, mnemonic 2/2 seeds" in note and "the SVC extrapolates" in note
    assert r"\textsuperscript{\dag}" in render_latex([summary])
    assert "mia_efficacy_extrapolated_mean" in render_csv([summary]).splitlines()[0]
    panels = {p.metric: p for p in gap_panels(summary)}
    assert {b.row for b in panels["mia_efficacy"].bars if b.flagged} == {"Retrain", "mnemonic"}
    # Avg Gap inherits the flag: every row's gap is taken against the flagged Retrain.
    assert {b.row for b in panels["avg_gap"].bars if b.flagged} == {"Original", "ft", "mnemonic"}
    assert "† Avg Gap of Original, ft, mnemonic:" in md


def test_gap_panels_show_gaps_to_retrain_and_distance_to_fixed_ideals(tree):
    root, written = tree
    summary = summaries_of(root)["class"]
    panels = {p.metric: p for p in gap_panels(summary)}
    assert list(panels)[0] == "avg_gap"
    forget = {b.row: b for b in panels["forget_acc"].bars}
    assert forget["Retrain"].zero and forget["Retrain"].mean == 0.0
    orig = [
        written["original"]["class", s]["forget_acc"] - written["retrain"]["class", s]["forget_acc"]
        for s in SEEDS
    ]
    assert forget["Original"].mean == pytest.approx(
        100 * np.mean(orig)
    )  # "better than doing nothing" is visible
    assert forget["Original"].std == pytest.approx(100 * np.std(orig, ddof=1))
    assert "gap to Retrain (pp)" in panels["forget_acc"].title
    # mia_loss's ideal is 50 %: every row, Retrain too, as its distance to 50 %.
    loss = {b.row: b for b in panels["mia_loss"].bars}
    values = [written["retrain"]["class", s]["mia_loss"] for s in SEEDS]
    assert not loss["Retrain"].zero and loss["Retrain"].mean == pytest.approx(100 * (np.mean(values) - 0.5))
    assert "value − 50 % (pp)" in panels["mia_loss"].title


def text_boxes(fig):
    """Window extents of every text the figure actually draws (tick pools keep undrawn labels)."""
    from matplotlib.text import Text

    drawn, draw = [], Text.draw

    def record(text, renderer):
        draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text.get_text(), text.get_window_extent(renderer)))

    Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        Text.draw = draw
    return drawn


def assert_no_text_overlaps(fig):
    boxes = text_boxes(fig)
    assert len(boxes) > 5
    clashes = [
        (a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1 :] if box_a.overlaps(box_b)
    ]
    assert not clashes
    width, height = fig.canvas.get_width_height()
    for text, box in boxes:  # and nothing is cut off at the figure's edge
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text


def crowded_setting(tmp_path):
    """Eight methods, several on the same spot as each other or as the Original, two seeds, long names."""
    rng = np.random.default_rng(3)
    retrain = {
        "forget_acc": 0.97,
        "retain_acc": 0.99,
        "test_acc": 0.98,
        "mia_efficacy": 0.08,
        "mia_loss": 0.46,
    }
    original = {
        "forget_acc": 0.996,
        "retain_acc": 0.996,
        "test_acc": 0.994,
        "mia_efficacy": 0.04,
        "mia_loss": 0.51,
    }
    datas = []
    for i, method in enumerate(
        (
            "ft",
            "ga",
            "none",
            "retrain",
            "boundary_shrink",
            "neggrad_plus",
            "random_label",
            "l1_sparse",
            "salun",
        )
    ):
        for seed in (0, 1):
            same = method in ("ga", "none")  # exactly the Original, as a no-op method is
            metrics = (
                dict(original)
                if same
                else {k: float(np.clip(v + rng.normal(0, 0.01), 0, 1)) for k, v in retrain.items()}
            )
            if method == "retrain":
                metrics = dict(retrain)
            datas.append(_results(method, seed, RANDOM, metrics, original, retrain, 0.1 * (i + 1)))
    (summary,) = write_runs(tmp_path, datas)
    return summary


def many_methods_setting(tmp_path, n: int = 28):
    """As many rows as a default-and-tuned table of every method (the results doc has 28)."""
    rng = np.random.default_rng(5)
    retrain = {"forget_acc": 0.46, "retain_acc": 0.99, "test_acc": 0.45, "mia_efficacy": 0.7, "mia_loss": 0.5}
    original = {
        "forget_acc": 0.99,
        "retain_acc": 0.99,
        "test_acc": 0.45,
        "mia_efficacy": 0.03,
        "mia_loss": 0.8,
    }
    datas = [_results("retrain", 0, RANDOM, dict(retrain), original, retrain, 0.1)]
    for i in range(n):
        metrics = {k: float(rng.uniform(0.1, 0.99)) for k in retrain}
        datas.append(_results(f"method_{i:02d}_long_name", 0, RANDOM, metrics, original, retrain, 0.1))
    (summary,) = write_runs(tmp_path, datas)
    return summary


def test_figures_have_no_overlapping_text(tmp_path, tree):
    root, _ = tree
    for summary in [
        many_methods_setting(tmp_path / "many"),
        crowded_setting(tmp_path / "crowded"),
        flagged_setting(tmp_path / "flagged"),
        *summaries_of(root).values(),
    ]:
        for make in (gap_figure, forget_vs_test_figure):
            assert_no_text_overlaps(make(summary))


def test_forget_vs_test_references_stay_visible_on_top_of_methods(tmp_path):
    ax = forget_vs_test_figure(crowded_setting(tmp_path)).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    refs = [lines.pop("Retrain (reference)"), lines.pop("Original (before unlearning)")]
    methods = list(lines.values())
    assert len(methods) == 8 and not ax.texts  # names are in the legend, not printed on the points
    assert min(r.get_zorder() for r in refs) > max(m.get_zorder() for m in methods)
    for line in refs + methods:  # hollow: what is underneath shows through
        assert line.get_markerfacecolor() == "none"
    # ga and none sit exactly on the Original: the legend says so, and their marker shapes differ.
    ga, none = lines["ga ! (same point as Original)"], lines["none ! (same point as Original)"]
    assert ga.get_marker() != none.get_marker()  # both marked as not unlearning: they did nothing


def test_sanitize_filename():
    assert sanitize_filename("cifar 10/resnet:18_class_classes3,5") == "cifar_10_resnet_18_class_classes3_5"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", sanitize_filename("a b/c..d"))


def test_tuned_runs_are_their_own_row_beside_the_default_one(tmp_path):
    from unlearnbench.report.runs import method_label

    assert method_label({"method": "imu", "method_preset": "tuned/memorise_cifar10"}) == "imu (tuned)"
    assert (
        method_label({"method": "imu", "method_preset": "imu/digits"}) == "imu"
    )  # a dataset preset is a default
    assert method_label({"method": "imu"}) == "imu"


def _tiny_result(tmp_path: Path, name: str, method: str, seed: int, forget: float, **extra) -> None:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    data = {
        "status": "ok",
        "method": method,
        "dataset": "digits",
        "model": "small_cnn",
        "seed": seed,
        "forget": {"scenario": "random", "ratio": 0.1},
        "metrics": {"forget_acc": forget, "test_acc": 0.9},
        "original": {
            "metrics": {"forget_acc": 0.99, "test_acc": 0.95},
            "trained_with": extra.pop("with", None),
        },
        "retrain": {"metrics": {"forget_acc": 0.9, "test_acc": 0.94}},
        "metric_info": {},
        "time_s": {"unlearn": 1.0, "retrain": extra.pop("retrain_s", 0.01)},
        "cache": {"retrain": {"hit": True, "train_seconds": 120.0}},
        "job_hash": f"{method}-{seed}",  # the same job run again has the same config hash
    }
    (folder / "results.json").write_text(json.dumps(data))


def test_no_op_rows_repeats_training_time_and_one_original_row_per_original_model(tmp_path):
    for seed in (0, 1):
        _tiny_result(tmp_path, f"none{seed}", "none", seed, 0.99)
        _tiny_result(tmp_path, f"ga{seed}", "ga", seed, 0.5 + 0.01 * seed)
        _tiny_result(tmp_path, f"mn{seed}", "mnemonic", seed, 0.7, **{"with": "mnemonic"})
    _tiny_result(tmp_path, "ga0_again", "ga", 0, 0.6)  # a repeat of seed 0: not a third seed
    (summary,) = summaries_of(tmp_path).values()
    rows = {row.name: row for row in summary.rows}
    assert rows["none"].no_unlearning and not rows["ga"].no_unlearning
    assert "forget accuracy 99.00 vs the original's 99.00" in rows["none"].no_unlearning[0]
    assert rows["ga"].n_seeds == 2 and rows["ga"].repeated == 1
    assert rows["ga"].metrics["forget_acc"].n == 2
    assert set(rows) >= {"Original", "Original (mnemonic training)"}
    assert rows["mnemonic"].original == "Original (mnemonic training)"
    assert rows["Retrain"].rte.mean == 120.0 and not rows["Retrain"].rte_cached  # training time, not a load
    md = render_markdown([summary])
    assert "| none ! |" in md and "! none did not unlearn" in md and "repeated run(s)" in md
