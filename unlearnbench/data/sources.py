"""Load the datasets the benchmark supports into memory as uint8 image tensors.

Each loader returns a :class:`~unlearnbench.data.raw.RawDataset` (whole train and test splits as
``uint8 [N, C, H, W]`` plus ``int64`` labels). Loaders take keyword arguments only, so configs can build
them with Hydra's ``instantiate`` and a ``_target_``. Nothing is downloaded unless ``download=True``; a
missing file raises :class:`~unlearnbench.errors.DatasetMissingError`, a one-line message saying where the
files go and how to get them. The JPEG re-encoding of CIFAR-10 is read by :mod:`unlearnbench.data.jpeg_archive`.

The CIFAR and SVHN files are read directly (python pickles / MATLAB files) rather than through
torchvision's dataset classes: those verify md5 sums, which would reject the small fakes the tests
write. torchvision is only used to fetch the official archives when downloading is asked for.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from unlearnbench.config.checks import check_int
from unlearnbench.data.jpeg_archive import load_cifar10_jpeg  # noqa: F401 (see below)
from unlearnbench.data.raw import RawDataset, ensure_files, expand_root, first_line, make_dataset
from unlearnbench.errors import UserError

# load_cifar10_jpeg is imported above because conf/dataset/cifar10_jpeg.yaml's _target_ names it here, and a
# source's _target_ is part of the cached models' key (runner.model_spec): moving it would retrain them.

_DIGIT_NAMES = [str(d) for d in range(10)]


# --------------------------------------------------------------------------------------------
# Embedded / synthetic data (no files)
# --------------------------------------------------------------------------------------------


def load_digits() -> RawDataset:
    """scikit-learn's embedded 8x8 digits, 1 channel, with a fixed stratified 80/20 split.

    The dataset has no official test split, so a stratified one (``random_state=0``) is made; the
    pixel range 0..16 is scaled to 0..255.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0
    )
    return make_dataset(
        "digits", images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], _DIGIT_NAMES
    )


def load_synthetic(
    num_train: int = 600,
    num_test: int = 200,
    num_classes: int = 10,
    channels: int = 3,
    image_size: int = 8,
    seed: int = 0,
) -> RawDataset:
    """Learnable random images: each sample is its class prototype plus Gaussian noise.

    Fully determined by the arguments (a seeded ``torch.Generator``), so tests can rebuild it.
    """
    for key, value, low in (
        ("dataset.num_train", num_train, 1),
        ("dataset.num_test", num_test, 1),
        ("dataset.num_classes", num_classes, 2),
        ("dataset.channels", channels, 1),
        ("dataset.image_size", image_size, 1),
    ):
        check_int(key, value, low)

    gen = torch.Generator().manual_seed(int(seed))
    prototypes = torch.rand(num_classes, channels, image_size, image_size, generator=gen)
    noise_std = 0.15  # small next to the prototypes' spread, so classes stay separable

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]
        noise = torch.randn(n, channels, image_size, image_size, generator=gen) * noise_std
        pixels = (prototypes[labels] + noise).clamp(0.0, 1.0)
        return torch.round(pixels * 255.0).to(torch.uint8), labels.to(torch.int64)

    train_x, train_y = split(num_train)
    test_x, test_y = split(num_test)
    classes = [f"class_{i}" for i in range(num_classes)]
    return make_dataset("synthetic", train_x, train_y, test_x, test_y, classes)


# --------------------------------------------------------------------------------------------
# MNIST-style idx files (through torchvision's readers; they do not check md5 on load)
# --------------------------------------------------------------------------------------------

_IDX_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def _load_idx_dataset(name: str, folder: str, dataset_cls, root: str | os.PathLike, download: bool):
    root_path = expand_root(root)
    expected = [f"{folder}/raw/{f}" for f in _IDX_FILES]

    def fetch() -> None:
        dataset_cls(str(root_path), train=True, download=True)

    ensure_files(name, root_path, expected, download, fetch)
    try:
        train = dataset_cls(str(root_path), train=True, download=False)
        test = dataset_cls(str(root_path), train=False, download=False)
    except (RuntimeError, ValueError, OSError) as err:
        reason = first_line(err)
        raise UserError(f"dataset={name}: cannot read the idx files under {root_path}: {reason}") from None
    return make_dataset(
        name,
        train.data.unsqueeze(1),
        train.targets,
        test.data.unsqueeze(1),
        test.targets,
        list(dataset_cls.classes),
    )


def load_mnist(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """MNIST (LeCun et al., 1998) from ``<root>/MNIST/raw/`` (torchvision layout), 1x28x28."""
    from torchvision.datasets import MNIST

    return _load_idx_dataset("mnist", "MNIST", MNIST, root, download)


def load_fashion_mnist(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """Fashion-MNIST (Xiao et al., 2017) from ``<root>/FashionMNIST/raw/``, 1x28x28."""
    from torchvision.datasets import FashionMNIST

    return _load_idx_dataset("fashion_mnist", "FashionMNIST", FashionMNIST, root, download)


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (python pickles of the official archives)
# --------------------------------------------------------------------------------------------

_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR100_DIR = "cifar-100-python"


def _unpickle(path: Path) -> dict:
    # The official CIFAR batches were pickled by Python 2: keys and strings come back as bytes.
    with path.open("rb") as f:
        return pickle.load(f, encoding="bytes")


def _decode_names(names: list) -> list[str]:
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _cifar_images(data: np.ndarray | list) -> np.ndarray:
    # Rows are 3072 bytes: 1024 red, then green, then blue, each row-major 32x32.
    arr = np.asarray(data, dtype=np.uint8)
    return arr.reshape(-1, 3, 32, 32)


def load_cifar10(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """CIFAR-10 (Krizhevsky, 2009) from ``<root>/cifar-10-batches-py/`` (python version)."""
    root_path = expand_root(root)
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    expected = [f"{_CIFAR10_DIR}/{f}" for f in [*train_files, "test_batch", "batches.meta"]]

    def fetch() -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root_path), train=True, download=True)

    ensure_files("cifar10", root_path, expected, download, fetch)
    base = root_path / _CIFAR10_DIR
    train = [_unpickle(base / f) for f in train_files]
    test = _unpickle(base / "test_batch")
    meta = _unpickle(base / "batches.meta")
    return make_dataset(
        "cifar10",
        np.concatenate([_cifar_images(b[b"data"]) for b in train]),
        np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in train]),
        _cifar_images(test[b"data"]),
        np.asarray(test[b"labels"], dtype=np.int64),
        _decode_names(meta[b"label_names"]),
    )


def load_cifar100(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """CIFAR-100 (Krizhevsky, 2009) from ``<root>/cifar-100-python/``, with superclass labels."""
    root_path = expand_root(root)
    expected = [f"{_CIFAR100_DIR}/{f}" for f in ("train", "test", "meta")]

    def fetch() -> None:
        from torchvision.datasets import CIFAR100

        CIFAR100(str(root_path), train=True, download=True)

    ensure_files("cifar100", root_path, expected, download, fetch)
    base = root_path / _CIFAR100_DIR
    train = _unpickle(base / "train")
    test = _unpickle(base / "test")
    meta = _unpickle(base / "meta")
    return make_dataset(
        "cifar100",
        _cifar_images(train[b"data"]),
        np.asarray(train[b"fine_labels"], dtype=np.int64),
        _cifar_images(test[b"data"]),
        np.asarray(test[b"fine_labels"], dtype=np.int64),
        _decode_names(meta[b"fine_label_names"]),
        train_coarse=np.asarray(train[b"coarse_labels"], dtype=np.int64),
        test_coarse=np.asarray(test[b"coarse_labels"], dtype=np.int64),
    )


# --------------------------------------------------------------------------------------------
# SVHN (MATLAB files of the cropped-digits format)
# --------------------------------------------------------------------------------------------


def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(str(path))
    images = np.transpose(mat["X"], (3, 2, 0, 1))  # H x W x C x N -> N x C x H x W
    labels = mat["y"].reshape(-1).astype(np.int64)
    labels[labels == 10] = 0  # SVHN stores digit 0 as label 10
    return images, labels


def load_svhn(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """SVHN cropped digits (Netzer et al., 2011) from ``<root>/{train,test}_32x32.mat``."""
    root_path = expand_root(root)
    expected = ["train_32x32.mat", "test_32x32.mat"]

    def fetch() -> None:
        from torchvision.datasets import SVHN

        for split in ("train", "test"):
            SVHN(str(root_path), split=split, download=True)

    ensure_files("svhn", root_path, expected, download, fetch)
    train_x, train_y = _read_svhn_mat(root_path / "train_32x32.mat")
    test_x, test_y = _read_svhn_mat(root_path / "test_32x32.mat")
    return make_dataset("svhn", train_x, train_y, test_x, test_y, _DIGIT_NAMES)
