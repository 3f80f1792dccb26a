"""Tests for unlearnbench.data.sources and .jpeg_archive: every loader on tiny fakes written into tmp_path."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from conftest import write_fake_cifar10

from unlearnbench.data import jpeg_archive
from unlearnbench.data.jpeg_archive import load_cifar10_jpeg
from unlearnbench.data.raw import RawDataset, describe
from unlearnbench.data.sources import (
    load_cifar10,
    load_cifar100,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_svhn,
    load_synthetic,
)
from unlearnbench.errors import DatasetMissingError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _check_layout(ds: RawDataset, channels: int, size: int) -> None:
    """The RawDataset contract: uint8 NCHW contiguous images, int64 labels of matching length."""
    for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)):
        assert x.dtype == torch.uint8 and x.is_contiguous()
        assert tuple(x.shape[1:]) == (channels, size, size)
        assert y.dtype == torch.int64 and y.shape == (x.shape[0],)
        assert int(y.min()) >= 0 and int(y.max()) < len(ds.classes)


# ------------------------------------------------------------------------------- digits, synthetic


def test_digits_shapes_range_and_split():
    from sklearn.datasets import load_digits as sk_load_digits

    ds = load_digits()
    _check_layout(ds, channels=1, size=8)
    sk = sk_load_digits()
    assert len(ds.train_y) + len(ds.test_y) == len(sk.target)
    assert len(ds.test_y) == pytest.approx(0.2 * len(sk.target), abs=1)
    # Pixel scale: 0..16 mapped to 0..255, so only the 17 scaled levels may appear.
    allowed = {round(v * 255 / 16) for v in range(17)}
    assert set(torch.cat([ds.train_x, ds.test_x]).unique().tolist()) <= allowed
    assert int(ds.train_x.max()) == 255 and int(ds.train_x.min()) == 0
    # Stratified: each class keeps ~20% of its samples in the test split.
    total = np.bincount(sk.target, minlength=10)
    test_counts = ds.test_y.bincount(minlength=10).numpy()
    assert np.all(np.abs(test_counts - 0.2 * total) <= 1)
    assert ds.classes == [str(d) for d in range(10)]


def test_digits_is_deterministic():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.test_y, b.test_y)


def test_synthetic_same_seed_same_tensors_and_other_seed_differs():
    a = load_synthetic(num_train=50, num_test=20, num_classes=5, channels=2, image_size=6, seed=3)
    b = load_synthetic(num_train=50, num_test=20, num_classes=5, channels=2, image_size=6, seed=3)
    c = load_synthetic(num_train=50, num_test=20, num_classes=5, channels=2, image_size=6, seed=4)
    _check_layout(a, channels=2, size=6)
    assert len(a.train_y) == 50 and len(a.test_y) == 20 and len(a.classes) == 5
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_y.bincount(minlength=5).tolist() == [10] * 5  # balanced labels


def test_synthetic_is_learnable_by_nearest_class_mean():
    ds = load_synthetic(num_train=200, num_test=100, num_classes=4, channels=3, image_size=8, seed=1)
    train = ds.train_x.flatten(1).float()
    means = torch.stack([train[ds.train_y == k].mean(0) for k in range(4)])
    pred = torch.cdist(ds.test_x.flatten(1).float(), means).argmin(1)
    assert (pred == ds.test_y).float().mean() > 0.9


# ------------------------------------------------------------------------------- CIFAR fakes


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(obj, f)


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def test_cifar10_fake_round_trips(tmp_path):
    written = write_fake_cifar10(tmp_path)
    ds = load_cifar10(root=str(tmp_path))
    _check_layout(ds, channels=3, size=32)
    rows = np.concatenate(written["train_rows"])
    assert len(ds.train_y) == 15 and len(ds.test_y) == 4
    assert ds.train_y.tolist() == written["train_labels"]
    assert ds.test_y.tolist() == written["test_labels"]
    assert ds.classes == written["names"]
    # A row is 1024 red, 1024 green, 1024 blue bytes, each plane row-major.
    assert int(ds.train_x[4, 1, 2, 5]) == int(rows[4, 1 * 1024 + 2 * 32 + 5])
    assert np.array_equal(ds.test_x.flatten(1).numpy(), written["test_rows"])
    assert ds.train_coarse is None and ds.test_coarse is None


def test_cifar100_fake_round_trips_with_coarse_labels(tmp_path):
    rng = np.random.default_rng(1)
    base = tmp_path / "cifar-100-python"
    splits = {}
    for split, n in (("train", 6), ("test", 3)):
        splits[split] = {
            b"data": _rows(rng, n),
            b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": rng.integers(0, 20, n).tolist(),
        }
        _pickle(base / split, splits[split])
    fine_names = [f"fine{i}" for i in range(100)]
    _pickle(
        base / "meta",
        {
            b"fine_label_names": [n.encode() for n in fine_names],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    ds = load_cifar100(root=tmp_path)
    _check_layout(ds, channels=3, size=32)
    assert ds.classes == fine_names
    assert ds.train_y.tolist() == splits["train"][b"fine_labels"]
    assert ds.test_coarse.dtype == torch.int64
    assert ds.train_coarse.tolist() == splits["train"][b"coarse_labels"]
    assert ds.test_coarse.tolist() == splits["test"][b"coarse_labels"]
    assert np.array_equal(ds.train_x.flatten(1).numpy(), splits["train"][b"data"])


# ------------------------------------------------------------------------------- SVHN, MNIST fakes


def test_svhn_fake_round_trips_and_maps_label_10_to_0(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    written = {}
    for split, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [9], [10], [4]][:n], dtype=np.uint8)
        savemat(str(tmp_path / f"{split}_32x32.mat"), {"X": x, "y": y})
        written[split] = (x, y)
    ds = load_svhn(root=tmp_path)
    _check_layout(ds, channels=3, size=32)
    assert ds.train_y.tolist() == [0, 1, 9, 0, 4]
    assert ds.test_y.tolist() == [0, 1, 9]
    x_train = written["train"][0]
    assert int(ds.train_x[3, 2, 7, 11]) == int(x_train[7, 11, 2, 3])  # N,C,H,W <- H,W,C,N
    assert np.array_equal(ds.test_x.numpy(), written["test"][0].transpose(3, 2, 0, 1))


def _write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """idx3/idx1 files as LeCun's MNIST distribution stores them (big-endian header)."""
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


@pytest.mark.parametrize(("loader", "folder"), [(load_mnist, "MNIST"), (load_fashion_mnist, "FashionMNIST")])
def test_mnist_layout_fake_round_trips(tmp_path, loader, folder):
    rng = np.random.default_rng(3)
    raw = tmp_path / folder / "raw"
    train_img = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    train_lab = rng.integers(0, 10, 7, dtype=np.uint8)
    test_img = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    test_lab = rng.integers(0, 10, 2, dtype=np.uint8)
    _write_idx(raw, "train", train_img, train_lab)
    _write_idx(raw, "t10k", test_img, test_lab)
    ds = loader(root=tmp_path)
    _check_layout(ds, channels=1, size=28)
    assert np.array_equal(ds.train_x[:, 0].numpy(), train_img)
    assert np.array_equal(ds.test_x[:, 0].numpy(), test_img)
    assert ds.train_y.tolist() == train_lab.tolist() and ds.test_y.tolist() == test_lab.tolist()
    assert len(ds.classes) == 10


# ------------------------------------------------------------------------------- missing files


@pytest.mark.parametrize(
    ("loader", "name"),
    [
        (load_mnist, "mnist"),
        (load_fashion_mnist, "fashion_mnist"),
        (load_cifar10, "cifar10"),
        (load_cifar100, "cifar100"),
        (load_svhn, "svhn"),
    ],
)
def test_missing_files_raise_dataset_missing_error(tmp_path, loader, name):
    root = tmp_path / "empty"
    with pytest.raises(DatasetMissingError) as info:
        loader(root=str(root))
    message = str(info.value)
    assert f"dataset={name}" in message and str(root.resolve()) in message
    assert "dataset.download=false" in message and "paths.data_dir" in message and "\n" not in message


def test_partially_missing_cifar10_names_the_missing_file(tmp_path):
    write_fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetMissingError, match="data_batch_3"):
        load_cifar10(root=tmp_path)


def test_failed_download_becomes_dataset_missing_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_network(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    root = tmp_path / "new" / "data"
    with pytest.raises(DatasetMissingError) as info:
        load_cifar10(root=root, download=True)
    message = str(info.value)
    assert "download failed" in message and "no route to host" in message and str(root.resolve()) in message
    assert "dataset=cifar10_jpeg" in message  # what works offline
    assert info.value.__cause__ is None  # no chained traceback for a user-facing error
    assert not (tmp_path / "new").exists()  # the folders made for the download are gone again


def test_failed_download_removes_its_partial_files_only(tmp_path, monkeypatch):
    import torchvision.datasets

    (tmp_path / "kept.txt").write_text("mine")

    def cut_off(root, **kwargs):
        (Path(root) / "cifar-10-python.tar.gz").write_bytes(b"half an archive")
        raise URLError("connection reset")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", cut_off)
    with pytest.raises(DatasetMissingError):
        load_cifar10(root=tmp_path, download=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]


# ------------------------------------------------------------------------------- CIFAR-10 JPEG


COLORS = {"cat": (200, 40, 40), "airplane": (30, 90, 220)}


def _jpeg_bytes(color: tuple[int, int, int], size: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _write_fake_jpeg_archive(path: Path) -> None:
    # Added out of order (cat before airplane, 0001 before 0000) to check the loader sorts names.
    members = []
    for cls in ("cat", "airplane"):
        members += [(f"train/{cls}/{i:04d}.jpg", cls) for i in (2, 0, 1)]
        members += [(f"test/{cls}/{i:04d}.jpg", cls) for i in (1, 0)]
    with tarfile.open(path, "w:gz") as tar:
        for name, cls in [("README.txt", None), *members]:
            data = b"not an image" if cls is None else _jpeg_bytes(COLORS[cls])
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar10_jpeg_decodes_sorted_and_labels_by_folder(tmp_path):
    archive = tmp_path / "tiny-jpeg.tar.gz"
    _write_fake_jpeg_archive(archive)
    ds = load_cifar10_jpeg(archive=str(archive), cache_dir=str(tmp_path / "cache"))
    _check_layout(ds, channels=3, size=8)
    assert ds.classes == ["airplane", "cat"]  # alphabetical folder order = label order
    assert ds.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.test_y.tolist() == [0, 0, 1, 1]
    # JPEG is lossy: pixels are close to, not equal to, the colour written.
    for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)):
        expected = torch.tensor([COLORS[ds.classes[k]] for k in y.tolist()], dtype=torch.float32)
        mean_rgb = x.float().mean(dim=(2, 3))
        assert torch.allclose(mean_rgb, expected, atol=8)


def test_cifar10_jpeg_second_call_uses_cache(tmp_path, monkeypatch):
    archive, cache = tmp_path / "tiny-jpeg.tar.gz", tmp_path / "cache"
    _write_fake_jpeg_archive(archive)
    first = load_cifar10_jpeg(archive=archive, cache_dir=cache)
    cached = list(cache.glob("*.pt"))
    assert len(cached) == 1 and cached[0].name.startswith("tiny-jpeg.tar.gz")
    assert not list(cache.glob("*.tmp"))  # the atomic write left no temp file behind

    def must_not_decode(path):
        raise AssertionError("archive decoded again although a cache file exists")

    monkeypatch.setattr(jpeg_archive, "_decode_jpeg_archive", must_not_decode)
    second = load_cifar10_jpeg(archive=archive, cache_dir=cache)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert second.classes == first.classes

    # A changed archive (new mtime) gets a new cache key, so it is decoded again.
    stat = archive.stat()
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        load_cifar10_jpeg(archive=archive, cache_dir=cache)


def test_cifar10_jpeg_missing_archive(tmp_path):
    with pytest.raises(DatasetMissingError, match="cifar10_jpeg") as info:
        load_cifar10_jpeg(archive=tmp_path / "nope.tar.gz", cache_dir=tmp_path / "cache")
    assert str(tmp_path) in str(info.value) and "nope.tar.gz" in str(info.value)


# ------------------------------------------------------------------------------- describe, real data


def test_describe_names_shapes():
    ds = load_synthetic(num_train=12, num_test=6, num_classes=3, channels=1, image_size=5)
    line = describe(ds)
    assert "synthetic" in line and "12x1x5x5" in line and "6x1x5x5" in line and "3 classes" in line
    assert "\n" not in line


@pytest.mark.skipif(
    not (SHARED_DATA / "FashionMNIST").is_dir(),
    reason=f"real Fashion-MNIST not found at {SHARED_DATA / 'FashionMNIST'}",
)
def test_real_fashion_mnist_loads():
    ds = load_fashion_mnist(root=SHARED_DATA)
    _check_layout(ds, channels=1, size=28)
    assert len(ds.train_y) == 60000 and len(ds.test_y) == 10000
    assert ds.train_y.bincount().tolist() == [6000] * 10
    assert ds.classes[0] == "T-shirt/top"
