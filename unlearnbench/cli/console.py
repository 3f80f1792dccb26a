"""The table the `unlearn` command prints after a single run: at most 100 characters wide, in percent.

Columns, their short labels, ideals and order come from results.json `metric_info` (each metric's
`columns`), so a new metric appears here without touching this file.
"""

from __future__ import annotations

import textwrap

from unlearnbench import provenance
from unlearnbench.report.verdicts import AVG_GAP, did_not_unlearn

WIDTH = 100
CELL = 9  # "=Retrain" plus a space


def _ideal(desc: dict, has_retrain: bool = True) -> str:
    ideal = desc.get("ideal")
    if desc.get("vs_retrain"):
        return "=Retrain" if has_retrain else "-"  # no Retrain row to be equal to (eval.retrain=false)
    if isinstance(ideal, (int, float)) and not isinstance(ideal, bool):
        return f"{100 * ideal:.1f}"
    return "-"


def _cell(value, sign: str = "") -> str:
    return f"{'-':>{CELL}}" if value is None else f"{100 * value:>{sign}{CELL}.2f}"


def table_columns(results: dict) -> list[str]:
    """The metric columns shown: those marked for the table and computed for some model, in order."""
    present = {k for who in (results["metrics"], results["original"]["metrics"]) for k in who}
    return [
        name for name, desc in results["metric_info"].items() if desc.get("table", True) and name in present
    ]


def _block(results: dict, cols: list[str], label_width: int, marked: bool) -> list[str]:
    info, method = results["metric_info"], results["method"]
    rows = [("original", results["original"]["metrics"]), (method, results["metrics"])]
    if results["retrain"] is not None:
        rows.append(("retrain", results["retrain"]["metrics"]))
    lines = [
        " " * label_width + "".join(f"{info[c].get('label', c):>{CELL}}" for c in cols),
        f"{'ideal':<{label_width}}"
        + "".join(f"{_ideal(info[c], results['retrain'] is not None):>{CELL}}" for c in cols),
    ]
    for name, values in rows:
        mark = "!" if name == method and marked else ""
        lines.append(f"{name + mark:<{label_width}}" + "".join(_cell(values.get(c)) for c in cols))
    if results["gap"]:
        gaps = "".join(_cell(results["gap"][c], "+") if c in results["gap"] else " " * CELL for c in cols)
        lines.append(f"{'gap to retrain':<{label_width}}" + gaps.rstrip())
    return lines


def format_table(results: dict) -> str:
    """Rows original / method / retrain / gap; columns in blocks that fit WIDTH; a key; the run's summary."""
    label_width = max(len(results["method"]) + 1, len("gap to retrain")) + 1
    per_block = max(1, (WIDTH - label_width) // CELL)
    cols = table_columns(results)
    reasons = _no_unlearning(results)
    lines: list[str] = []
    for start in range(0, len(cols), per_block):
        lines += _block(results, cols[start : start + per_block], label_width, bool(reasons))
    info = results["metric_info"]
    key = [f"{info[c]['label']}={c}" for c in cols if info[c].get("label", c) != c]
    key_text = "Values in %" + (" (AvgGap: mean |gap| to Retrain, points)" if AVG_GAP in cols else "")
    lines += textwrap.wrap(f"{key_text}; {', '.join(key)}." if key else key_text + ".", WIDTH)
    lines += flag_notes(results)
    if reasons:
        lines += textwrap.wrap(
            f"! {results['method']} did not unlearn: {'; '.join(reasons)}", WIDTH, subsequent_indent="  "
        )
    if results["status"] != "ok":
        lines += textwrap.wrap(
            f"{results['method']}: {results['status'].upper()} - {results['reason']}", WIDTH
        )
    lines += textwrap.wrap(summary_line(results), WIDTH, subsequent_indent="  ")
    return "\n".join(lines)


def _no_unlearning(results: dict) -> list[str]:
    """Why the method's row shows no unlearning (verdicts.did_not_unlearn), [] when it does or is not a method."""
    if results["method"] in ("retrain",) or results["status"] != "ok":
        return []
    return did_not_unlearn(
        results["metrics"],
        results["original"]["metrics"],
        retrain=(results.get("retrain") or {}).get("metrics"),
        forget_size=results["forget"].get("size"),
    )


def flag_notes(results: dict) -> list[str]:
    """One line per diagnostic that flags a shown metric for some model (e.g. MIA-efficacy extrapolating)."""
    notes = []
    for name, desc in results["metric_info"].items():
        flagged, threshold = desc.get("flags"), desc.get("threshold")
        if not flagged or threshold is None or not results["metric_info"].get(flagged, {}).get("table", True):
            continue
        models = [
            who
            for who, values in (
                ("original", results["original"]["metrics"]),
                (results["method"], results["metrics"]),
                ("retrain", (results["retrain"] or {}).get("metrics") or {}),
            )
            if (values.get(name) or 0) > threshold
        ]
        if models:
            label = results["metric_info"].get(flagged, {}).get("label", flagged)
            notes += textwrap.wrap(
                f"! {label} unreliable for {', '.join(models)}: {desc.get('meaning', name)}",
                WIDTH,
                subsequent_indent="  ",
            )
    return notes


def summary_line(results: dict) -> str:
    t, f = results["time_s"], results["forget"]
    what = f["scenario"] + (f" {','.join(map(str, f['classes']))}" if f.get("classes") else "")
    cache = results["cache"]
    hits = ", ".join(f"{k} {'hit' if v['hit'] else 'trained'}" for k, v in cache.items())
    where = next(iter(cache.values()))["path"].rsplit("/models/", 1)[0] if cache else ""
    rte = "-" if t.get("unlearn") is None else f"{t['unlearn']:.2f}s"
    preset = f" | preset {results['method_preset']}" if results.get("method_preset") else ""
    device = results["env"]["device"] + (
        "" if results["env"]["precision"] == "32-true" else f" {results['env']['precision']}"
    )
    return (
        f"{results['dataset']} / {results['model']} / forget {what} ({f['size']} samples) / seed "
        f"{results['seed']}{preset} | {device} | unlearn {rte}, total {t['total']:.1f}s | "
        f"cache ({hits}): {where} | {provenance.short(results['env'])}"
    )


def where_lines(run_dir: str) -> str:
    """Where a run's results went and what to do with them."""
    return f"results: {run_dir}/results.json\nnext: unlearn-report {run_dir}   (tables, CSV, LaTeX and plots)"
