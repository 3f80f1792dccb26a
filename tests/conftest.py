"""Shared fixtures: compose the real configs with Hydra's compose API, then shrink them for tests."""

from __future__ import annotations

import os
from pathlib import Path

# Tiny models on a 2-core machine run fastest single-threaded (tests run in 2 xdist workers, and the CLI
# tests start subprocesses that inherit this).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from omegaconf import open_dict  # noqa: E402

from unlearnbench import compose  # noqa: E402
from unlearnbench.config.core import config_dir  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# A `trainer` config (conf/trainer/) for tests that call `lightning.fit` directly: CPU, float32, quiet.
CPU_TRAINER = {
    "_target_": "pytorch_lightning.Trainer",
    "accelerator": "cpu",
    "devices": 1,
    "precision": "32-true",
    "deterministic": True,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}
CONF = config_dir()


def compose_cfg(overrides: list[str] | None = None, tmp_path: Path | None = None, tiny: bool = True):
    """The real composed config for `overrides`; with `tmp_path`, outputs and cache go there."""
    cfg = compose(list(overrides or []), output_dir=tmp_path / "run" if tmp_path is not None else None)
    with open_dict(cfg):
        if tmp_path is not None:
            cfg.paths.cache_dir = str(tmp_path / "cache")
            cfg.paths.data_dir = str(tmp_path / "data")
        if tiny:
            cfg.trainer.enable_progress_bar = False
            cfg.logger = None
    return cfg


@pytest.fixture(autouse=True)
def own_model_cache(tmp_path, monkeypatch):
    """Every test (and every `unlearn` it starts) gets its own user-level model cache: tmp_path/cache."""
    monkeypatch.setenv("UNLEARN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def decoded_cifar10_jpeg(pytestconfig, tmp_path) -> Path:
    """The decoded CIFAR-10 JPEG tensors (~30 s to decode) kept between sessions in pytest's cache, linked in as
    this test's dataset cache (`<UNLEARN_CACHE>/datasets`)."""
    kept = pytestconfig.cache.mkdir("cifar10_jpeg")
    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / "datasets").symlink_to(kept, target_is_directory=True)
    return kept


@pytest.fixture
def make_cfg(tmp_path):
    """`make_cfg(["method=ft", ...])` -> a tiny config writing under this test's tmp_path."""

    def factory(overrides=None, tiny=True, subdir=None):
        return compose_cfg(overrides, tmp_path / subdir if subdir else tmp_path, tiny)

    return factory


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "FashionMNIST" / "raw").is_dir():
        pytest.skip(
            f"../shared/data/FashionMNIST not found at {SHARED_DATA} (the shared data folder is absent)"
        )
    return SHARED_DATA


def write_fake_cifar10(root: Path, per_batch: int = 3, n_test: int = 4) -> dict:
    """CIFAR-10's python-pickle layout under `root` with random images (what torchvision's download unpacks)."""
    import pickle

    import numpy as np

    def dump(path: Path, obj: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(obj))

    rng = np.random.default_rng(0)
    base = root / "cifar-10-batches-py"
    written = {"train_rows": [], "train_labels": []}
    for i in range(1, 6):
        rows, labels = (
            rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            (np.arange(per_batch) % 10).tolist(),
        )
        dump(base / f"data_batch_{i}", {b"data": rows, b"labels": labels})
        written["train_rows"].append(rows)
        written["train_labels"] += labels
    written["test_rows"] = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    written["test_labels"] = (np.arange(n_test) % 10).tolist()
    dump(base / "test_batch", {b"data": written["test_rows"], b"labels": written["test_labels"]})
    written["names"] = [f"name{i}" for i in range(10)]
    dump(base / "batches.meta", {b"label_names": [n.encode() for n in written["names"]]})
    return written


def write_fake_mnist(root: Path, folder: str = "MNIST", n_train: int = 200, n_test: int = 60) -> None:
    """MNIST's idx files (torchvision layout, `<root>/<folder>/raw/`) with random 28x28 images."""
    import struct

    import numpy as np

    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
