"""Collect ``results.json`` files and aggregate them into per-setting tables (pure functions).

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

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench.verdicts import FORGET_TOLERANCE, did_not_unlearn

RESULTS_NAME = "results.json"

# Column order when metric_info gives no ``order``; metrics not listed follow alphabetically.
METRIC_ORDER: tuple[str, ...] = (
    "forget_acc",
    "retain_acc",
    "val_acc",
    "test_acc",
    "mia_efficacy",
    "mia_loss",
    "mia_entropy",
)

RETRAIN_ROW = "Retrain"
ORIGINAL_ROW = "Original"
RETRAIN_METHOD = "retrain"  # the method whose runs are the Retrain reference itself
AVG_GAP = "avg_gap"

Seed = Any  # int in practice, but a hand-written results.json may hold anything hashable


@dataclass(frozen=True, order=True)
class SettingKey:
    """What makes runs comparable: same data, same model, same forget set definition."""

    dataset: str
    model: str
    scenario: str
    forget: str  # "ratio=0.1", "classes=0,3", "superclass=4" or "unspecified"

    def label(self) -> str:
        """Human-readable one-liner, e.g. ``digits / small_cnn / random (ratio=0.1)``."""
        return f"{self.dataset} / {self.model} / {self.scenario} ({self.forget})"

    def slug(self) -> str:
        """File-name fragment; sanitised by the caller before use."""
        return "_".join((self.dataset, self.model, self.scenario, self.forget.replace("=", "")))


@dataclass
class Run:
    """One parsed ``results.json``; metric dicts hold finite numbers only (null / NaN dropped)."""

    path: Path
    status: str
    method: str
    seed: Seed
    setting: SettingKey
    metrics: dict[str, float]
    original: dict[str, float]
    retrain: dict[str, float] | None
    gap: dict[str, float]
    metric_info: dict[str, dict[str, Any]]
    time_s: dict[str, float]
    reason: str | None = None
    cache_hits: dict[str, bool] = field(default_factory=dict)  # stage -> loaded from the model cache
    train_seconds: dict[str, float] = field(default_factory=dict)  # stage -> what training the model took
    original_trained_with: str | None = None  # the method whose hook trained the original (Mnemonic's codes)
    repeats: int = 1  # runs of this same job (config) found (the newest is kept)
    job_hash: str | None = None  # the job's config hash: the same job run again has the same one

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Stat:
    """Mean and sample std (ddof=1) over ``n`` values; ``std`` is 0.0 when ``n == 1``."""

    mean: float
    std: float
    n: int


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
        return [str(c) for c in self.metric_info.get(AVG_GAP, {}).get("components") or []]

    @property
    def has_gaps(self) -> bool:
        return any(row.gaps or row.avg_gap is not None for row in self.rows)

    @property
    def has_rte(self) -> bool:
        return any(row.rte is not None for row in self.rows)


# --------------------------------------------------------------------------- finding and parsing


def find_result_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """All ``results.json`` files under ``paths`` (recursively); also the paths that do not exist.

    A path may be a run dir, a Hydra sweep dir or a results file itself. Overlapping paths
    (a sweep dir and one of its runs) yield each file once.
    """
    found: dict[Path, None] = {}
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.setdefault(path.resolve())
        elif path.is_dir():
            for hit in sorted(path.rglob(RESULTS_NAME)):
                if hit.is_file():
                    found.setdefault(hit.resolve())
        else:
            missing.append(str(raw))
    return sorted(found), missing


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def clean_metrics(obj: object) -> dict[str, float]:
    """Keep the finite numeric entries of a metrics mapping (null / NaN / non-numbers dropped)."""
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): float(v) for k, v in obj.items() if is_number(v)}


def _nested_metrics(obj: object) -> dict[str, float] | None:
    """``{"metrics": {...}}`` -> cleaned metrics; ``None`` when the reference is absent."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("metrics"), Mapping):
        return None
    return clean_metrics(obj["metrics"])


def forget_spec(forget: Mapping[str, Any]) -> str:
    """``ratio=0.1`` for random forgetting, ``classes=0,3`` or ``superclass=4`` for class-wise ones."""
    classes = forget.get("classes")
    if classes is not None:
        items = classes if isinstance(classes, (list, tuple)) else [classes]
        return "classes=" + ",".join(str(c) for c in items)
    if forget.get("superclass") is not None:
        return f"superclass={forget['superclass']}"
    ratio = forget.get("ratio")
    if ratio is not None:
        return f"ratio={ratio:g}" if is_number(ratio) else f"ratio={ratio}"
    return "unspecified"


def _cache_hits(cache: object) -> dict[str, bool]:
    """``{"retrain": True}`` from ``cache: {"retrain": {"hit": true, ...}}``; malformed entries dropped."""
    if not isinstance(cache, Mapping):
        return {}
    return {
        str(k): v["hit"]
        for k, v in cache.items()
        if isinstance(v, Mapping) and isinstance(v.get("hit"), bool)
    }


def _train_seconds(cache: object) -> dict[str, float]:
    """``{"retrain": 812.4}``: each cached model's training time, recorded with it (so a cache hit still
    reports what the model cost)."""
    if not isinstance(cache, Mapping):
        return {}
    return {
        str(k): float(v["train_seconds"])
        for k, v in cache.items()
        if isinstance(v, Mapping) and is_number(v.get("train_seconds"))
    }


def method_label(data: Mapping[str, Any]) -> str:
    """The row a run belongs to: its method, marked `(tuned)` when it ran with a tuned preset (conf/tuned/),
    so default and tuned rows of one method stand side by side."""
    preset = str(data.get("method_preset") or "")
    return f"{data['method']} (tuned)" if preset.startswith("tuned/") else str(data["method"])


def parse_run(data: object, path: Path) -> Run:
    """Turn one decoded ``results.json`` into a :class:`Run`; ``ValueError`` if it is not one."""
    if not isinstance(data, Mapping):
        raise ValueError("top level is not a JSON object")
    missing = [k for k in ("method", "dataset", "model") if not data.get(k)]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    forget = data.get("forget") if isinstance(data.get("forget"), Mapping) else {}
    setting = SettingKey(
        dataset=str(data["dataset"]),
        model=str(data["model"]),
        scenario=str(forget.get("scenario") or "unknown"),
        forget=forget_spec(forget),
    )
    info = data.get("metric_info")
    return Run(
        path=path,
        status=str(data.get("status") or "ok"),
        method=method_label(data),
        seed=data.get("seed"),
        setting=setting,
        metrics=clean_metrics(data.get("metrics")),
        original=_nested_metrics(data.get("original")) or {},
        retrain=_nested_metrics(data.get("retrain")),
        gap=clean_metrics(data.get("gap")),
        metric_info={str(k): dict(v) for k, v in info.items() if isinstance(v, Mapping)}
        if isinstance(info, Mapping)
        else {},
        time_s=clean_metrics(data.get("time_s")),
        reason=str(data["reason"]) if data.get("reason") else None,
        cache_hits=_cache_hits(data.get("cache")),
        train_seconds=_train_seconds(data.get("cache")),
        job_hash=str(data["job_hash"]) if data.get("job_hash") else None,
        original_trained_with=(data.get("original") or {}).get("trained_with")
        if isinstance(data.get("original"), Mapping)
        else None,
    )


def load_runs(files: Iterable[Path]) -> tuple[list[Run], list[str]]:
    """Parse every file; unreadable or malformed ones become one warning line each and are skipped."""
    runs: list[Run] = []
    warnings: list[str] = []
    for path in files:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            runs.append(parse_run(data, Path(path)))
        except json.JSONDecodeError as err:
            warnings.append(f"skipping {path}: malformed JSON ({err.msg} at line {err.lineno})")
        except (OSError, UnicodeDecodeError, ValueError) as err:
            warnings.append(f"skipping {path}: {err}")
    return runs, warnings


# --------------------------------------------------------------------------- statistics


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Mean and sample std (ddof=1) of the finite values; ``None`` when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None
    n = len(xs)
    mean = math.fsum(xs) / n
    # One seed has no spread to estimate: report 0.0 and let the renderer show it as undefined.
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return Stat(mean=mean, std=std, n=n)


def summarize_dicts(dicts: Sequence[Mapping[str, float]]) -> dict[str, Stat]:
    """Per-key :func:`summarize` over a list of metric dicts (keys may differ between dicts)."""
    keys = {k for d in dicts for k in d}
    out = {k: summarize(d.get(k) for d in dicts) for k in keys}
    return {k: s for k, s in out.items() if s is not None}


def subtract(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    """``a - b`` on the keys both hold."""
    return {k: a[k] - b[k] for k in a if k in b}


def run_gap(run: Run) -> dict[str, float]:
    """The run's gap to Retrain: the stored ``gap`` or, when absent, metrics minus retrain metrics."""
    if run.gap:
        return dict(run.gap)
    return subtract(run.metrics, run.retrain) if run.retrain else {}


def avg_abs_gap(
    model: Mapping[str, float], retrain: Mapping[str, float], components: Sequence[str]
) -> float | None:
    """Mean |model - retrain| over ``components``, as the runner computes ``avg_gap``; ``None`` if one is missing."""
    if not components or any(c not in model or c not in retrain for c in components):
        return None
    return math.fsum(abs(model[c] - retrain[c]) for c in components) / len(components)


def diagnostics(info: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, float]]:
    """Values that flag another metric as unreliable: ``{key: (flagged metric, threshold)}``.

    Declared in ``metric_info`` with ``flags`` (e.g. ``mia_efficacy_extrapolated`` flags
    ``mia_efficacy`` above its ``threshold``); they are notes, not table columns.
    """
    return {
        name: (str(desc["flags"]), float(desc.get("threshold", 0.5)))
        for name, desc in info.items()
        if desc.get("flags")
    }


def flag_counts(
    dicts: Sequence[Mapping[str, float]], diag: Mapping[str, tuple[str, float]]
) -> dict[str, tuple[int, int]]:
    """Per flagged metric: (seeds whose flag value is above its threshold, seeds with the flag), when > 0."""
    out: dict[str, tuple[int, int]] = {}
    for key, (metric, threshold) in diag.items():
        values = [d[key] for d in dicts if key in d]
        flagged = sum(v > threshold for v in values)
        if flagged:
            out[metric] = (flagged, len(values))
    return out


# --------------------------------------------------------------------------- grouping


def group_by_setting(runs: Iterable[Run]) -> dict[SettingKey, list[Run]]:
    groups: dict[SettingKey, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.setting].append(run)
    return dict(groups)


def group_by_method(runs: Iterable[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.method].append(run)
    return dict(groups)


def _seed_sort_key(seed: Seed) -> tuple[int, str]:
    return (0, f"{seed:020d}") if isinstance(seed, int) else (1, str(seed))


def per_seed(runs: Iterable[Run], pick: Callable[[Run], Any]) -> dict[Seed, Any]:
    """First non-empty ``pick(run)`` per seed, runs taken in path order (deterministic dedup)."""
    out: dict[Seed, Any] = {}
    for run in sorted(runs, key=lambda r: str(r.path)):
        value = pick(run)
        if value and run.seed not in out:
            out[run.seed] = value
    return out


def newest_per_seed(runs: Iterable[Run]) -> list[Run]:
    """One run per job run again (same setting, method, seed and config hash): the newest results file;
    `repeats` counts the runs found. Runs of one seed with other configs (a hyperparameter sweep) all stay."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.setting, run.method, repr(run.seed), run.job_hash or str(run.path))].append(run)
    kept = []
    for group in groups.values():
        newest = max(group, key=lambda r: (_mtime(r.path), str(r.path)))
        newest.repeats = len(group)
        kept.append(newest)
    return kept


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def duplicate_warnings(runs: Iterable[Run]) -> list[str]:
    """Warn when one (setting, method, seed) has runs of several configs: they are all averaged as if seeds
    (the same config run again is a repeat: only its newest run is reported)."""
    configs = defaultdict(set)
    for r in runs:
        configs[(r.setting, r.method, repr(r.seed))].add(r.job_hash or str(r.path))
    counts = {key: len(hashes) for key, hashes in configs.items()}
    return [
        f"{n} runs of method={method} seed={seed} with different configs in setting {key.label()}; all are "
        f"averaged (a hyperparameter sweep? report its runs separately)"
        for (key, method, seed), n in sorted(counts.items(), key=lambda kv: repr(kv[0]))
        if n > 1
    ]


# --------------------------------------------------------------------------- rows


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
        for key in ("forget_acc", AVG_GAP):
            a = row.avg_gap if key == AVG_GAP else row.metrics.get(key)
            b = base.avg_gap if key == AVG_GAP else base.metrics.get(key)
            if a is not None and b is not None:
                noise[key] = 2 * math.sqrt(a.std**2 / a.n + b.std**2 / b.n)
        means = lambda r: {  # noqa: E731
            "forget_acc": r.metrics["forget_acc"].mean if "forget_acc" in r.metrics else None,
            AVG_GAP: r.avg_gap.mean if r.avg_gap is not None else None,
        }
        row.no_unlearning = did_not_unlearn(
            means(row),
            means(base),
            tolerance=max(FORGET_TOLERANCE, noise.get("forget_acc", 0.0)),
            avg_gap_noise=noise.get(AVG_GAP, 0.0),
            retrain=means(retrain) if retrain is not None else None,
        )


def order_metrics(names: Iterable[str], info: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Table columns: by ``metric_info[name]["order"]`` where given, then :data:`METRIC_ORDER`, then A-Z.

    Left out: `avg_gap` (its own "Avg Gap" column), the diagnostics (notes under the table) and a metric's
    spread over its subsample draws (``spread_of``: read by the claim checks, kept in results.json).
    """
    info = info or {}
    spreads = {name for name, desc in info.items() if desc.get("spread_of")}
    names = set(names) - {AVG_GAP} - set(diagnostics(info)) - spreads

    def key(name: str) -> tuple[int, float, str]:
        order = info.get(name, {}).get("order")
        if is_number(order):
            return (0, float(order), name)
        if name in METRIC_ORDER:
            return (1, float(METRIC_ORDER.index(name)), name)
        return (2, 0.0, name)

    return sorted(names, key=key)


def merge_metric_info(runs: Iterable[Run]) -> dict[str, dict[str, Any]]:
    """Union of the runs' ``metric_info`` (first description of a metric wins)."""
    info: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: str(r.path)):
        for name, desc in run.metric_info.items():
            info.setdefault(name, desc)
    return info


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
    components = [str(c) for c in info.get(AVG_GAP, {}).get("components") or []]
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
        seeds=sorted({r.seed for r in runs}, key=_seed_sort_key),
        rows=rows,
        metric_names=order_metrics((name for row in rows for name in row.metrics), info),
        metric_info=info,
        n_runs=len(runs),
        left_out=sorted((r for r in runs if not r.ok), key=lambda r: (r.method, _seed_sort_key(r.seed))),
    )


def aggregate(runs: Iterable[Run]) -> list[SettingSummary]:
    """One :class:`SettingSummary` per setting, settings in sorted order."""
    return [summarize_setting(key, rs) for key, rs in sorted(group_by_setting(runs).items())]


def sanitize_filename(name: str) -> str:
    """Keep letters, digits, '-', '_' and '.'; everything else becomes '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "setting"
