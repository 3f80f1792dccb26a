"""The console table the `unlearn` command prints after a single run."""

from __future__ import annotations

SUMMARY_METRICS = ("forget_acc", "retain_acc", "val_acc", "test_acc", "test_forget_acc", "mia_efficacy", "mia_loss",
                   "mia_entropy")


def _cell(value, width: int, sign: str = "") -> str:
    return f"{'-':>{width}}" if value is None else f"{100 * value:>{sign}{width}.2f}"


def format_table(results: dict) -> str:
    """A short console table: rows original / unlearned / retrain / gap, columns in percent."""
    rows = [("original", results["original"]["metrics"]), (results["method"], results["metrics"])]
    if results["retrain"] is not None:
        rows.append(("retrain", results["retrain"]["metrics"]))
    cols = [c for c in SUMMARY_METRICS if c in results["original"]["metrics"]]
    width = max(len(r[0]) for r in rows + [("gap vs retrain", {})])
    widths = [max(14, len(c) + 2) for c in cols]
    lines = [" " * width + "".join(f"{c:>{w}}" for c, w in zip(cols, widths))]
    for name, vals in rows:
        lines.append(f"{name:<{width}}" + "".join(_cell(vals.get(c), w) for c, w in zip(cols, widths)))
    if results["gap"]:
        lines.append(f"{'gap vs retrain':<{width}}"
                     + "".join(_cell(results["gap"].get(c), w, "+") for c, w in zip(cols, widths)))
    extra = {k: v for k, v in results["metrics"].items() if k not in cols and v is not None}
    if extra:
        lines.append("  ".join(f"{k}={v:.4f}" for k, v in extra.items()))
    if results["status"] != "ok":
        lines.append(f"{results['method']}: {results['status'].upper()} - {results['reason']}")
    t = results["time_s"]
    hits = ", ".join(f"{k}: {'hit' if v['hit'] else 'trained'}" for k, v in results["cache"].items())
    f = results["forget"]
    rte = "n/a" if t["unlearn"] is None else f"{t['unlearn']:.2f}s"
    preset = f" | method preset {results['method_preset']}" if results.get("method_preset") else ""
    lines.append(
        f"{results['dataset']} / {results['model']} / forget {f['scenario']} ({f['size']} samples) / seed "
        f"{results['seed']}{preset} | cache {hits} | unlearn {rte}, total {t['total']:.1f}s"
    )
    return "\n".join(lines)
