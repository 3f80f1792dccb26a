"""``report.csv``: one row per setting and table row; metric values as fractions, so that it round-trips with
``results.json``."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from unlearnbench.report.aggregate import SettingSummary
from unlearnbench.report.cells import all_metric_info
from unlearnbench.report.columns import diagnostics, order_metrics


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_csv(summaries: Sequence[SettingSummary]) -> str:
    """One row per setting x row (Retrain, Original, methods); metric values as fractions."""
    info = all_metric_info(summaries)
    metrics = order_metrics((m for s in summaries for m in s.metric_names), info)
    diag = sorted({k for s in summaries for k in diagnostics(s.metric_info)})
    header = ["dataset", "model", "scenario", "forget", "method", "kind", "n_seeds", "n_diverged"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_gap_mean", f"{m}_gap_std"]
    header += [f"{d}_{part}" for d in diag for part in ("mean", "std")]
    header += ["avg_gap_mean", "avg_gap_std", "rte_s_mean", "rte_s_std"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for summary in summaries:
        key = summary.key
        for row in summary.rows:
            values = [key.dataset, key.model, key.scenario, key.forget, row.name, row.kind]
            values += [row.n_seeds, row.n_diverged]
            for m in metrics:
                stat, gap = row.metrics.get(m), row.gaps.get(m)
                values += [
                    _num(stat and stat.mean),
                    _num(stat and stat.std),
                    _num(gap and gap.mean),
                    _num(gap and gap.std),
                ]
            for stat in [row.metrics.get(d) for d in diag] + [row.avg_gap, row.rte]:
                values += [_num(stat and stat.mean), _num(stat and stat.std)]
            writer.writerow(values)
    return buf.getvalue()
