"""A content-addressed cache of trained models, safe to share between parallel jobs.

Each entry is `<kind>-<hash of its spec>.pt` plus a `.json` beside it with the spec and the SHA-256
of the checkpoint bytes. Writes are atomic and as readable as the umask allows (`unlearnbench.files`);
a file lock makes concurrent jobs that need the same entry build it once; loads use `weights_only=True`
and check the hash, and a damaged entry is moved aside and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from unlearnbench.files import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)


def spec_hash(spec: dict) -> str:
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class CacheHit:
    key: str
    hit: bool
    path: str


class ModelCache:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def paths(self, key: str) -> tuple[Path, Path, Path]:
        base = self.root / "models" / key
        return base.with_suffix(".pt"), base.with_suffix(".json"), base.with_suffix(".lock")

    def _load(self, key: str) -> dict | None:
        ckpt, meta, _ = self.paths(key)
        if not ckpt.exists() and not meta.exists():
            return None
        try:
            expected = json.loads(meta.read_text())["sha256"]
            if file_sha256(ckpt) != expected:
                raise ValueError("checksum mismatch")
            return torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as err:  # any damage: truncated, tampered, unreadable, missing half
            aside = ckpt.with_name(f"{ckpt.stem}.corrupt-{int(time.time())}")
            log.warning("cache entry %s is damaged (%s); moved aside to %s and rebuilding", key, err, aside)
            for p in (ckpt, meta):
                if p.exists():
                    os.replace(p, aside.with_suffix(aside.suffix + p.suffix))
            return None

    def get_or_create(self, kind: str, spec: dict, create: Callable[[], dict]) -> tuple[dict, CacheHit]:
        """Return the payload for `spec`, building it with `create()` (once, across processes) if absent."""
        key = f"{kind}-{spec_hash(spec)}"
        ckpt, meta, lock = self.paths(key)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)):
            payload = self._load(key)
            if payload is not None:
                return payload, CacheHit(key, True, str(ckpt))
            payload = create()
            self._write(kind, key, spec, payload)
        return payload, CacheHit(key, False, str(ckpt))

    def create_many(
        self, kind: str, specs: list[dict], create: Callable[[list[int]], list[dict]]
    ) -> list[int]:
        """Build the entries of `specs` that are absent with one call `create(positions)` (e.g. a batched
        training of several models); return those positions.

        Every entry's lock is held meanwhile (taken in key order, so two jobs cannot deadlock), so a job
        needing one of these models waits and loads it. Presence is judged by the files; a damaged entry
        is found and rebuilt by `get_or_create` when it is loaded.
        """
        keys = [f"{kind}-{spec_hash(spec)}" for spec in specs]
        self.root.joinpath("models").mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as locks:
            for key in sorted(set(keys)):
                locks.enter_context(FileLock(str(self.paths(key)[2])))
            missing = [
                i
                for i, key in enumerate(keys)
                if keys.index(key) == i and not all(p.exists() for p in self.paths(key)[:2])
            ]
            if missing:
                for i, payload in zip(missing, create(missing), strict=True):
                    self._write(kind, keys[i], specs[i], payload)
        return missing

    def _write(self, kind: str, key: str, spec: dict, payload: dict) -> None:
        ckpt, meta, _ = self.paths(key)
        atomic_write_bytes(ckpt, lambda f: torch.save(payload, f))
        atomic_write_text(
            meta, json.dumps({"kind": kind, "sha256": file_sha256(ckpt), "spec": spec}, indent=1, default=str)
        )
