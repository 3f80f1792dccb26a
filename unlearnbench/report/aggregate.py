"""Aggregate the parsed runs (:mod:`unlearnbench.report.runs`) into per-setting tables (pure functions).

A *setting* is (dataset, model, forget scenario, forget ratio, classes or superclass); within a
setting the runs are grouped by method and summarised over seeds as mean and sample standard
deviation (ddof=1). Every table starts with two reference rows built from the runs themselves:

* **Retrain** - the retrained-from-scratch oracle (``results["retrain"]["metrics"]``); runs of the
  ``retrain`` method train the same model (same seed, same cache key) and are merged into this row;
* **Original** - the model before unlearning (``results["original"]["metrics"]``).

Several methods' runs of one seed share the same references, so those rows count each seed once.
Avg Gap is each run's stored ``metrics.avg_gap`` (SalUn's mean |method - Retrain| over the
components in ``metric_info.avg_gap.components``), averaged over seeds; the Original row's is
computed per seed from the same components. RTE is the wall-clock time of the unlearning stage alone.
Runs whose status is not ``ok`` (diverged, failed) are listed and left out of the means.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unlearnbench.report.columns import diagnostics, gap_components, merge_metric_info, order_metrics
from unlearnbench.report.runs import (
    Run,
    Seed,
    SettingKey,
    find_result_files,  # noqa: F401 (scripts/ import it from here)
    group_by_method,
    group_by_setting,
    load_runs,  # noqa: F401 (scripts/ import it from here)
    newest_per_seed,
    per_seed,
    seed_sort_key,
)
from unlearnbench.report.stats import (
    Stat,
    avg_abs_gap,
    flag_counts,
    run_gap,
    subtract,
    summarize,
    summarize_dicts,
)
from unlearnbench.report.verdicts import AVG_GAP, FORGET_TOLERANCE, did_not_unlearn

RETRAIN_ROW = "Retrain"
ORIGINAL_ROW = "Original"
RETRAIN_METHOD = "retrain"  # the method whose runs are the Retrain reference itself
VERDICT_METRICS = ("forget_acc", AVG_GAP)  # what verdicts.did_not_unlearn reads of a row


@dataclass
class Row:
    """One table row: a reference (Retrain / Original) or a method, summarised over seeds."""

    name: str
    kind: str  # "retrain", "original" or "method"
    n_seeds: int  # runs (seeds) in the group, excluded ones included
    metrics: dict[str, Stat] = field(default_factory=dict)
    gaps: dict[str, Stat] = field(default_factory=dict)
    avg_gap: Stat | None = None
    rte: Stat | None = None
    rte_cached: bool = False  # every run that timed this row's model loaded it from the cache
    excluded: dict[str, int] = field(default_factory=dict)  # status -> number of runs left out
    reasons: list[str] = field(default_factory=list)
    flags: dict[str, tuple[int, int]] = field(default_factory=dict)  # metric -> (seeds flagged, seeds)
    repeated: int = 0  # runs left out as repeats of a seed already in the row (the newest run is kept)
    no_unlearning: list[str] = field(default_factory=list)  # verdicts.did_not_unlearn's reasons
    original: str = ORIGINAL_ROW  # the Original row this method's runs started from

    @property
    def n_diverged(self) -> int:
        return sum(self.excluded.values())

    def stat(self, metric: str) -> Stat | None:
        """The row's summary of `metric`, Avg Gap included (kept apart from `metrics`: its own column)."""
        return self.avg_gap if metric == AVG_GAP else self.metrics.get(metric)

    def status_note(self) -> str:
        """``""`` when every run is usable, else e.g. ``diverged (1/3 seeds)``."""
        parts = [f"{status} ({k}/{self.n_seeds} seeds)" for status, k in sorted(self.excluded.items())]
        return ", ".join(parts)


@dataclass
class SettingSummary:
    """The aggregated table of one setting."""

    key: SettingKey
    seeds: list[Seed]
    rows: list[Row]
    metric_names: list[str]
    metric_info: dict[str, dict[str, Any]]
    n_runs: int = 0
    left_out: list[Run] = field(default_factory=list)  # runs whose status is not ok

    @property
    def avg_gap_components(self) -> list[str]:
        return gap_components(self.metric_info)

    @property
    def has_gaps(self) -> bool:
        return any(row.gaps or row.avg_gap is not None for row in self.rows)

    @property
    def has_rte(self) -> bool:
        return any(row.rte is not None for row in self.rows)


def _without(metrics: Mapping[str, float], key: str) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k != key}


def retrain_by_seed(runs: Sequence[Run]) -> dict[Seed, dict[str, float]]:
    """Per seed, the Retrain model's metrics: the runs' references, completed by ``retrain`` method runs.

    Both are the same model (same seed, same cache key); the method run adds what only the unlearned
    model is evaluated on, its ``avg_gap`` (0 by definition) left out.
    """
    own = per_seed(
        [r for r in runs if r.method == RETRAIN_METHOD and r.ok], lambda r: _without(r.metrics, AVG_GAP)
    )
    refs = per_seed(runs, lambda r: r.retrain)
    return {seed: {**own.get(seed, {}), **refs.get(seed, {})} for seed in {**own, **refs}}


def retrain_row(runs: Sequence[Run], diag: Mapping[str, tuple[str, float]]) -> Row | None:
    """The Retrain row: references and ``retrain`` method runs merged, each seed once.

    RTE per seed is the longest time a run of that seed spent obtaining the model (``time_s.retrain``
    of the references, ``time_s.unlearn`` of ``retrain`` runs): the training time when one of them
    trained it, a cache load time when all found it in the cache (then ``rte_cached``).
    """
    own = [r for r in runs if r.method == RETRAIN_METHOD]
    metrics = retrain_by_seed(runs)
    if not metrics and not own:
        return None
    times: dict[Seed, float] = {}
    trained = per_seed(runs, lambda r: r.train_seconds.get("retrain"))  # recorded with the cached model
    for run in runs:
        is_own = run.method == RETRAIN_METHOD and run.ok
        for t in (
            run.time_s.get("retrain") if run.retrain else None,
            run.time_s.get("unlearn") if is_own else None,
        ):
            if t is not None:
                times[run.seed] = max(t, times.get(run.seed, t))
    times.update(trained)  # the training time, never a cache load's
    # A 'retrain' run records the cache state of its own training call (a hit once its reference
    # trained the model), so only the other runs tell whether anything was trained.
    hits = [r.cache_hits.get("retrain") for r in runs if r.seed in times and r.method != RETRAIN_METHOD]
    return Row(
        name=RETRAIN_ROW,
        kind="retrain",
        n_seeds=len(set(metrics) | {r.seed for r in own}),
        metrics=summarize_dicts(list(metrics.values())),
        rte=summarize(times.values()),
        rte_cached=bool(hits) and all(h is True for h in hits) and not trained,
        excluded=dict(Counter(r.status for r in own if not r.ok)),
        reasons=sorted({r.reason for r in own if not r.ok and r.reason}),
        flags=flag_counts(list(metrics.values()), diag),
    )


def original_name(trained_with: str | None) -> str:
    return ORIGINAL_ROW if trained_with is None else f"{ORIGINAL_ROW} ({trained_with} training)"


def original_rows(
    runs: Sequence[Run],
    retrain: Mapping[Seed, Mapping[str, float]],
    components: Sequence[str],
    diag: Mapping[str, tuple[str, float]],
) -> list[Row]:
    """One Original row per original model: the plain one, and one per method whose hook trained its own."""
    families: dict[str | None, list[Run]] = defaultdict(list)
    for run in runs:
        families[run.original_trained_with].append(run)
    rows = [
        original_row(family, retrain, components, diag)
        for _, family in sorted(families.items(), key=_none_first)
    ]
    return [row for row in rows if row]


def _none_first(item: tuple) -> tuple:
    return (item[0] is not None, item[0] or "")


def original_row(
    runs: Sequence[Run],
    retrain: Mapping[Seed, Mapping[str, float]],
    components: Sequence[str],
    diag: Mapping[str, tuple[str, float]],
) -> Row | None:
    """The model before unlearning; its gaps and Avg Gap against the same seed's Retrain."""
    original = per_seed(runs, lambda r: r.original)
    if not original:
        return None
    pairs = [(m, retrain[s]) for s, m in original.items() if s in retrain]
    gaps = [g for g in (subtract(m, r) for m, r in pairs) if g]
    return Row(
        name=original_name(runs[0].original_trained_with),
        kind="original",
        n_seeds=len(original),
        metrics=summarize_dicts(list(original.values())),
        gaps=summarize_dicts(gaps),
        avg_gap=summarize(avg_abs_gap(m, r, components) for m, r in pairs),
        flags=flag_counts(list(original.values()), diag),
    )


def method_row(method: str, runs: Sequence[Run], diag: Mapping[str, tuple[str, float]]) -> Row:
    """One method over its seeds; runs whose status is not ``ok`` are counted and left out."""
    good = [r for r in runs if r.ok]
    excluded = Counter(r.status for r in runs if not r.ok)
    gaps = [g for g in (run_gap(r) for r in good) if g]
    return Row(
        name=method,
        kind="method",
        n_seeds=len(runs),
        metrics=summarize_dicts([r.metrics for r in good]),
        gaps=summarize_dicts(gaps),
        avg_gap=summarize(r.metrics.get(AVG_GAP) for r in good),
        rte=summarize(r.time_s.get("unlearn") for r in good),
        excluded=dict(excluded),
        reasons=sorted({r.reason for r in runs if not r.ok and r.reason}),
        flags=flag_counts([r.metrics for r in good], diag),
        repeated=sum(r.repeats - 1 for r in runs),
        original=original_name(runs[0].original_trained_with) if runs else ORIGINAL_ROW,
    )


def mark_no_unlearning(rows: Sequence[Row]) -> None:
    """verdicts.did_not_unlearn on each method row's seed means against its Original row, the forget
    accuracies' noise being their seed spread (two standard errors of the difference), at least one point."""
    originals = {row.name: row for row in rows if row.kind == "original"}
    retrain = next((row for row in rows if row.kind == "retrain"), None)
    for row in rows:
        base = originals.get(row.original)
        if row.kind != "method" or base is None:
            continue
        noise = {}
        for key in VERDICT_METRICS:
            a, b = row.stat(key), base.stat(key)
            if a is not None and b is not None:
                noise[key] = 2 * math.sqrt(a.std**2 / a.n + b.std**2 / b.n)
        row.no_unlearning = did_not_unlearn(
            _means(row),
            _means(base),
            tolerance=max(FORGET_TOLERANCE, noise.get("forget_acc", 0.0)),
            avg_gap_noise=noise.get(AVG_GAP, 0.0),
            retrain=_means(retrain) if retrain is not None else None,
        )


def _means(row: Row) -> dict[str, float | None]:
    """The row's seed means of what the verdict reads (None where absent)."""
    return {key: None if (stat := row.stat(key)) is None else stat.mean for key in VERDICT_METRICS}


def flag_avg_gap(rows: Sequence[Row], components: Sequence[str]) -> None:
    """Avg Gap inherits a flag on a component, the row's own or Retrain's (its gap is against Retrain)."""
    retrain = next((r.flags for r in rows if r.kind == "retrain"), {})
    for row in rows:
        hits = [row.flags.get(c) or retrain.get(c) for c in components]
        if row.avg_gap is not None and any(hits):
            row.flags[AVG_GAP] = max(h for h in hits if h)


def summarize_setting(key: SettingKey, runs: Sequence[Run]) -> SettingSummary:
    """Retrain row, Original row, then one row per method (alphabetical; ``retrain`` runs are in Retrain)."""
    info = merge_metric_info(runs)
    diag = diagnostics(info)
    components = gap_components(info)
    runs = newest_per_seed(runs)
    rows = [row for row in (retrain_row(runs, diag),) if row]
    rows += original_rows(runs, retrain_by_seed(runs), components, diag)
    for method, method_runs in sorted(group_by_method(runs).items()):
        if method != RETRAIN_METHOD:
            rows.append(method_row(method, method_runs, diag))
    flag_avg_gap(rows, components)
    mark_no_unlearning(rows)
    return SettingSummary(
        key=key,
        seeds=sorted({r.seed for r in runs}, key=seed_sort_key),
        rows=rows,
        metric_names=order_metrics((name for row in rows for name in row.metrics), info),
        metric_info=info,
        n_runs=len(runs),
        left_out=sorted((r for r in runs if not r.ok), key=lambda r: (r.method, seed_sort_key(r.seed))),
    )


def aggregate(runs: Iterable[Run]) -> list[SettingSummary]:
    """One :class:`SettingSummary` per setting, settings in sorted order."""
    return [summarize_setting(key, rs) for key, rs in sorted(group_by_setting(runs).items())]
