"""Find and parse ``results.json`` files into :class:`Run` records, and group them (pure functions but for
reading the files).

A run belongs to a *setting* (:class:`SettingKey`: dataset, model, forget scenario and forget set) and to a
method's row of that setting's table; :mod:`unlearnbench.report.aggregate` summarises the rows.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_NAME = "results.json"

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


def sanitize_filename(name: str) -> str:
    """Keep letters, digits, '-', '_' and '.'; everything else becomes '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "setting"


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


def seed_sort_key(seed: Seed) -> tuple[int, str]:
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
