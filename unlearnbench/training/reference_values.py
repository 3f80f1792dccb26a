"""The metric values of the cached reference models (original, Retrain), stored beside the model cache: every
method run of a seed shares them (`evaluation.ValuesStore`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from unlearnbench import provenance
from unlearnbench.data.splits import Splits
from unlearnbench.files import atomic_write_text
from unlearnbench.runtime import Runtime
from unlearnbench.training.cache import spec_hash

log = logging.getLogger(__name__)

REFERENCE_MODELS = ("original", "retrain")


def _checksum(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


class ReferenceValues:
    """One file per model, splits, metric config and precision, under `<cache>/metrics/`.

    `cache_info` is the run's record of its trained models (`TrainedModels.cache_info`), read when a value is
    loaded or saved: a model's key is known once it is trained.
    """

    def __init__(
        self, root: Path, cache_info: dict[str, dict], metrics: dict, splits: Splits, runtime: Runtime
    ):
        self.root, self.cache_info = Path(root), cache_info
        self.metrics, self.splits, self.runtime = metrics, splits, runtime

    def path(self, who: str) -> Path | None:
        """Where the values of reference model `who` are kept; None for any other model."""
        info = self.cache_info.get(who)
        if who not in REFERENCE_MODELS or info is None:
            return None
        spec = {
            "model": info["key"],
            "code": provenance.code_version(provenance.METRIC_CODE),
            "metrics": self.metrics,
            "splits": {name: split.fingerprint() for name, split in self.splits.eval_splits().items()},
            "device": self.runtime.device.type,
            "precision": self.runtime.precision,
        }
        return self.root / "metrics" / f"{who}-{spec_hash(spec)}.json"

    def load(self, who: str) -> dict[str, float] | None:
        """The stored values of reference model `who`, or None: also None, with a warning, when the file does
        not match the checksum stored with it (edited or damaged: recomputed)."""
        path = self.path(who)
        try:
            stored = json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            return None
        if stored is None:
            return None
        values = stored.get("values") if isinstance(stored, dict) else None
        if not isinstance(values, dict) or stored.get("sha256") != _checksum(values):
            aside = path.with_name(f"{path.stem}.corrupt-{int(time.time())}.json")
            os.replace(path, aside)  # kept for a look, as a damaged model is, not overwritten
            log.warning(
                "%s: cached %s metric values fail their checksum; moved aside to %s, recomputing",
                path,
                who,
                aside,
            )
            return None
        return values

    def save(self, who: str, values: dict[str, float]) -> None:
        path = self.path(who)
        if path is not None:
            atomic_write_text(path, json.dumps({"values": values, "sha256": _checksum(values)}))
