"""Collect ``results.json`` files and aggregate them into per-setting tables (pure functions).

A *setting* is (dataset, model, forget scenario, forget ratio or classes); within a setting the runs
are grouped by method and summarised over seeds as mean and sample standard deviation (ddof=1).
Every table starts with two reference rows built from the runs themselves:

* **Retrain** - the retrained-from-scratch oracle (``results["retrain"]["metrics"]``);
* **Original** - the model before unlearning (``results["original"]["metrics"]``).

Several methods' runs of one seed share the same references, so those rows count each seed once.
Avg Gap follows the SalUn protocol (Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based
Weight Saliency in Image Classification", ICLR 2024): the mean over UA, RA, TA and MIA-Efficacy of
|method - Retrain|, computed per run and then averaged over seeds. |UA gap| equals |forget_acc gap|
because UA = 1 - forget_acc. RTE is the wall-clock time of the unlearning stage alone.
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

RESULTS_NAME = "results.json"

# Metrics averaged (as |gap|) into the "Avg Gap" column.
AVG_GAP_METRICS: tuple[str, ...] = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")

# Preferred column order; metrics not listed follow in alphabetical order.
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

Seed = Any  # int in practice, but a hand-written results.json may hold anything hashable


@dataclass(frozen=True, order=True)
class SettingKey:
    """What makes runs comparable: same data, same model, same forget set definition."""

    dataset: str
    model: str
    scenario: str
    forget: str  # "ratio=0.1", "classes=0,3" or "unspecified"

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
    excluded: dict[str, int] = field(default_factory=dict)  # status -> number of runs left out
    reasons: list[str] = field(default_factory=list)

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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def clean_metrics(obj: object) -> dict[str, float]:
    """Keep the finite numeric entries of a metrics mapping (null / NaN / non-numbers dropped)."""
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): float(v) for k, v in obj.items() if _is_number(v)}


def _nested_metrics(obj: object) -> dict[str, float] | None:
    """``{"metrics": {...}}`` -> cleaned metrics; ``None`` when the reference is absent."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("metrics"), Mapping):
        return None
    return clean_metrics(obj["metrics"])


def forget_spec(forget: Mapping[str, Any]) -> str:
    """``ratio=0.1`` for random forgetting, ``classes=0,3`` for class-wise scenarios."""
    classes = forget.get("classes")
    if classes is not None:
        items = classes if isinstance(classes, (list, tuple)) else [classes]
        return "classes=" + ",".join(str(c) for c in items)
    ratio = forget.get("ratio")
    if ratio is not None:
        return f"ratio={ratio:g}" if _is_number(ratio) else f"ratio={ratio}"
    return "unspecified"


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
        method=str(data["method"]),
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


def avg_abs_gap(gap: Mapping[str, float], keys: Sequence[str] = AVG_GAP_METRICS) -> float | None:
    """Mean |gap| over ``keys`` that are present; ``None`` when none is."""
    values = [abs(gap[k]) for k in keys if k in gap]
    return math.fsum(values) / len(values) if values else None


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


def duplicate_warnings(runs: Iterable[Run]) -> list[str]:
    """Warn when one (setting, method, seed) has several runs: they are all averaged as if seeds."""
    counts = Counter((r.setting, r.method, repr(r.seed)) for r in runs)
    return [
        f"{n} runs of method={method} seed={seed} in setting {key.label()}; all are averaged "
        f"(a hyperparameter sweep? report its runs separately)"
        for (key, method, seed), n in sorted(counts.items(), key=lambda kv: repr(kv[0]))
        if n > 1
    ]


# --------------------------------------------------------------------------- rows


def reference_rows(runs: Sequence[Run]) -> list[Row]:
    """Retrain and Original rows, each seed counted once however many methods share it."""
    retrain = per_seed(runs, lambda r: r.retrain)
    original = per_seed(runs, lambda r: r.original)
    retrain_time = per_seed(runs, lambda r: r.time_s.get("retrain") if r.retrain else None)
    rows: list[Row] = []
    if retrain:
        rows.append(
            Row(
                name=RETRAIN_ROW,
                kind="retrain",
                n_seeds=len(retrain),
                metrics=summarize_dicts(list(retrain.values())),
                # Retrain's "unlearning" cost is retraining (0 s-ish when it was loaded from cache).
                rte=summarize(retrain_time.values()),
            )
        )
    if original:
        # Original vs Retrain of the same seed shows how much there is to unlearn.
        gaps = [subtract(m, retrain[s]) for s, m in original.items() if s in retrain]
        gaps = [g for g in gaps if g]
        rows.append(
            Row(
                name=ORIGINAL_ROW,
                kind="original",
                n_seeds=len(original),
                metrics=summarize_dicts(list(original.values())),
                gaps=summarize_dicts(gaps),
                avg_gap=summarize(avg_abs_gap(g) for g in gaps),
            )
        )
    return rows


def method_row(method: str, runs: Sequence[Run]) -> Row:
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
        avg_gap=summarize(avg_abs_gap(g) for g in gaps),
        rte=summarize(r.time_s.get("unlearn") for r in good),
        excluded=dict(excluded),
        reasons=sorted({r.reason for r in runs if not r.ok and r.reason}),
    )


def order_metrics(names: Iterable[str]) -> list[str]:
    """Known metrics in :data:`METRIC_ORDER`, then the rest alphabetically.

    `avg_gap` is left out: the report computes it per run for every row as its own "Avg Gap" column.
    """
    names = set(names) - {"avg_gap"}
    known = [m for m in METRIC_ORDER if m in names]
    return known + sorted(names - set(known))


def merge_metric_info(runs: Iterable[Run]) -> dict[str, dict[str, Any]]:
    """Union of the runs' ``metric_info`` (first description of a metric wins)."""
    info: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: str(r.path)):
        for name, desc in run.metric_info.items():
            info.setdefault(name, desc)
    return info


def summarize_setting(key: SettingKey, runs: Sequence[Run]) -> SettingSummary:
    """Retrain row, Original row, then one row per method (alphabetical)."""
    rows = reference_rows(runs)
    for method, method_runs in sorted(group_by_method(runs).items()):
        rows.append(method_row(method, method_runs))
    metric_names = order_metrics(name for row in rows for name in row.metrics)
    seeds = sorted({r.seed for r in runs}, key=_seed_sort_key)
    return SettingSummary(
        key=key, seeds=seeds, rows=rows, metric_names=metric_names, metric_info=merge_metric_info(runs)
    )


def aggregate(runs: Iterable[Run]) -> list[SettingSummary]:
    """One :class:`SettingSummary` per setting, settings in sorted order."""
    return [summarize_setting(key, rs) for key, rs in sorted(group_by_setting(runs).items())]


def sanitize_filename(name: str) -> str:
    """Keep letters, digits, '-', '_' and '.'; everything else becomes '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "setting"
