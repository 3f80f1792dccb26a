"""Load every dataset the benchmark supports into memory as uint8 image tensors.

Each loader returns a :class:`RawDataset` (whole train and test splits as ``uint8 [N, C, H, W]``
plus ``int64`` labels). Loaders take keyword arguments only, so configs can build them with Hydra's
``instantiate`` and a ``_target_``. Nothing is downloaded unless ``download=True``; a missing file
raises :class:`~unlearnbench.errors.DatasetMissingError`, a one-line message saying where the
files go and how to get them.

The CIFAR and SVHN files are read directly (python pickles / MATLAB files) rather than through
torchvision's dataset classes: those verify md5 sums, which would reject the small fakes the tests
write. torchvision is only used to fetch the official archives when downloading is asked for.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from unlearnbench.checks import check_int
from unlearnbench.errors import DatasetMissingError, UserError
from unlearnbench.files import atomic_write_bytes

# Errors a torchvision download raises when there is no network or a mirror fails.
_DOWNLOAD_ERRORS = (RuntimeError, URLError, OSError, ValueError)

_DIGIT_NAMES = [str(d) for d in range(10)]


@dataclass
class RawDataset:
    """A whole dataset in memory: uint8 images ``[N, C, H, W]`` and int64 labels."""

    name: str
    train_x: torch.Tensor  # uint8, shape [N, C, H, W], contiguous
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor  # uint8 [M, C, H, W]
    test_y: torch.Tensor  # int64 [M]
    classes: list[str]  # class names, index = label
    train_coarse: torch.Tensor | None = None  # int64 [N] CIFAR-100 superclass labels, else None
    test_coarse: torch.Tensor | None = None


def describe(ds: RawDataset) -> str:
    """One line of shapes for logs, e.g. ``cifar10: train 50000x3x32x32 uint8, test ...``."""
    train_shape = "x".join(str(s) for s in ds.train_x.shape)
    test_shape = "x".join(str(s) for s in ds.test_x.shape)
    line = (
        f"{ds.name}: train {train_shape} {str(ds.train_x.dtype).removeprefix('torch.')}, "
        f"test {test_shape}, {len(ds.classes)} classes"
    )
    if ds.train_coarse is not None:
        line += f" ({int(ds.train_coarse.max()) + 1} coarse)"
    return line


# --------------------------------------------------------------------------------------------
# Small shared helpers
# --------------------------------------------------------------------------------------------


def _make(
    name: str,
    train_x: np.ndarray | torch.Tensor,
    train_y: np.ndarray | torch.Tensor,
    test_x: np.ndarray | torch.Tensor,
    test_y: np.ndarray | torch.Tensor,
    classes: list[str],
    train_coarse: np.ndarray | None = None,
    test_coarse: np.ndarray | None = None,
) -> RawDataset:
    """Build a RawDataset with the promised dtypes and contiguous memory."""

    def images(x: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        return x.to(torch.uint8).contiguous()

    def labels(y: np.ndarray | torch.Tensor | None) -> torch.Tensor | None:
        if y is None:
            return None
        return torch.as_tensor(np.asarray(y).reshape(-1).astype(np.int64)).contiguous()

    return RawDataset(
        name=name,
        train_x=images(train_x),
        train_y=labels(train_y),
        test_x=images(test_x),
        test_y=labels(test_y),
        classes=list(classes),
        train_coarse=labels(train_coarse),
        test_coarse=labels(test_coarse),
    )


def _root(root: str | os.PathLike) -> Path:
    return Path(root).expanduser()


def _missing(root: Path, expected: list[str]) -> list[str]:
    """The expected relative paths that do not exist under root."""
    return [rel for rel in expected if not (root / rel).exists()]


def _ensure_files(dataset: str, root: Path, expected: list[str], download: bool, fetch) -> None:
    """Make sure every expected file is under root, downloading with ``fetch()`` if allowed.

    Raises DatasetMissingError naming the first missing path when files are absent and either
    downloading is off or the download failed (e.g. no network); a failed download leaves nothing
    behind (no empty folders, no partial archives).
    """
    missing = _missing(root, expected)
    if not missing:
        return
    if not download:
        raise DatasetMissingError(dataset, str(root), missing[0])
    created = _new_paths_guard(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fetch()
    except _DOWNLOAD_ERRORS as err:
        created()
        # One line, no traceback: the CLI prints UserErrors as a single message.
        raise DatasetMissingError(dataset, str(root), missing[0], download_error=_first_line(err)) from None
    still_missing = _missing(root, expected)
    if still_missing:
        raise DatasetMissingError(dataset, str(root), still_missing[0])


def _new_paths_guard(root: Path):
    """A function that removes whatever appears under `root` (and `root` and its new parents) from now on."""
    import shutil

    existing_parent = next(p for p in (root, *root.parents) if p.exists())
    before = set(root.iterdir()) if root.is_dir() else set()

    def remove_new() -> None:
        if root.is_dir():
            for path in set(root.iterdir()) - before:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        for folder in (root, *root.parents):  # folders the download made, now empty
            if folder == existing_parent or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()

    return remove_new


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _unpickle(path: Path) -> dict:
    # The official CIFAR batches were pickled by Python 2: keys and strings come back as bytes.
    with path.open("rb") as f:
        return pickle.load(f, encoding="bytes")


def _decode_names(names: list) -> list[str]:
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


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
    return _make(
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
    return _make("synthetic", train_x, train_y, test_x, test_y, classes)


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
    root_path = _root(root)
    expected = [f"{folder}/raw/{f}" for f in _IDX_FILES]

    def fetch() -> None:
        dataset_cls(str(root_path), train=True, download=True)

    _ensure_files(name, root_path, expected, download, fetch)
    try:
        train = dataset_cls(str(root_path), train=True, download=False)
        test = dataset_cls(str(root_path), train=False, download=False)
    except (RuntimeError, ValueError, OSError) as err:
        reason = _first_line(err)
        raise UserError(f"dataset={name}: cannot read the idx files under {root_path}: {reason}") from None
    return _make(
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


def _cifar_images(data: np.ndarray | list) -> np.ndarray:
    # Rows are 3072 bytes: 1024 red, then green, then blue, each row-major 32x32.
    arr = np.asarray(data, dtype=np.uint8)
    return arr.reshape(-1, 3, 32, 32)


def load_cifar10(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """CIFAR-10 (Krizhevsky, 2009) from ``<root>/cifar-10-batches-py/`` (python version)."""
    root_path = _root(root)
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    expected = [f"{_CIFAR10_DIR}/{f}" for f in [*train_files, "test_batch", "batches.meta"]]

    def fetch() -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root_path), train=True, download=True)

    _ensure_files("cifar10", root_path, expected, download, fetch)
    base = root_path / _CIFAR10_DIR
    train = [_unpickle(base / f) for f in train_files]
    test = _unpickle(base / "test_batch")
    meta = _unpickle(base / "batches.meta")
    return _make(
        "cifar10",
        np.concatenate([_cifar_images(b[b"data"]) for b in train]),
        np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in train]),
        _cifar_images(test[b"data"]),
        np.asarray(test[b"labels"], dtype=np.int64),
        _decode_names(meta[b"label_names"]),
    )


def load_cifar100(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """CIFAR-100 (Krizhevsky, 2009) from ``<root>/cifar-100-python/``, with superclass labels."""
    root_path = _root(root)
    expected = [f"{_CIFAR100_DIR}/{f}" for f in ("train", "test", "meta")]

    def fetch() -> None:
        from torchvision.datasets import CIFAR100

        CIFAR100(str(root_path), train=True, download=True)

    _ensure_files("cifar100", root_path, expected, download, fetch)
    base = root_path / _CIFAR100_DIR
    train = _unpickle(base / "train")
    test = _unpickle(base / "test")
    meta = _unpickle(base / "meta")
    return _make(
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
    root_path = _root(root)
    expected = ["train_32x32.mat", "test_32x32.mat"]

    def fetch() -> None:
        from torchvision.datasets import SVHN

        for split in ("train", "test"):
            SVHN(str(root_path), split=split, download=True)

    _ensure_files("svhn", root_path, expected, download, fetch)
    train_x, train_y = _read_svhn_mat(root_path / "train_32x32.mat")
    test_x, test_y = _read_svhn_mat(root_path / "test_32x32.mat")
    return _make("svhn", train_x, train_y, test_x, test_y, _DIGIT_NAMES)


# --------------------------------------------------------------------------------------------
# CIFAR-10 as JPEGs in a tar.gz (decoded once, then cached as a .pt file)
# --------------------------------------------------------------------------------------------

_JPEG_SUFFIXES = (".jpg", ".jpeg")


def _jpeg_cache_path(archive: Path, cache_dir: Path) -> Path:
    """Cache file keyed by the archive's name, size and mtime, so a changed archive is re-decoded."""
    stat = archive.stat()
    return cache_dir / f"{archive.name}-{stat.st_size}-{stat.st_mtime_ns}.pt"


def _read_jpeg_members(archive: Path) -> dict[str, tuple[str, str, bytes]]:
    """Map each ``<split>/<class>/<file>.jpg`` path to (split, class, bytes), read in one pass.

    Reading sequentially avoids seeking backwards in the gzip stream; names are sorted later.
    """
    members: dict[str, tuple[str, str, bytes]] = {}
    with tarfile.open(archive, "r:*") as tar:
        for info in tar:
            if not info.isfile() or not info.name.lower().endswith(_JPEG_SUFFIXES):
                continue
            parts = Path(info.name).parts
            if len(parts) < 3 or parts[-3] not in ("train", "test"):
                continue
            handle = tar.extractfile(info)
            if handle is not None:
                members[info.name] = (parts[-3], parts[-2], handle.read())
    return members


def _decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)


def _decode_jpeg_archive(archive: Path) -> dict:
    members = _read_jpeg_members(archive)
    classes = sorted({cls for _, cls, _ in members.values()})
    if not classes:
        raise UserError(f"dataset=cifar10_jpeg: no train/<class>/*.jpg members in {archive}")
    label_of = {cls: i for i, cls in enumerate(classes)}
    out: dict = {"classes": classes}
    for split in ("train", "test"):
        names = sorted(n for n, (s, _, _) in members.items() if s == split)
        if not names:
            raise UserError(f"dataset=cifar10_jpeg: no {split}/<class>/*.jpg members in {archive}")
        images = [_decode_jpeg(members[n][2]) for n in names]
        shapes = {img.shape for img in images}
        if len(shapes) != 1:
            raise UserError(f"dataset=cifar10_jpeg: images in {archive} differ in size: {sorted(shapes)}")
        out[f"{split}_x"] = torch.from_numpy(np.stack(images))
        out[f"{split}_y"] = torch.tensor([label_of[members[n][1]] for n in names], dtype=torch.int64)
    return out


def _load_cache(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError):
        return None  # a damaged cache entry is rebuilt rather than trusted


def load_cifar10_jpeg(archive: str | os.PathLike, cache_dir: str | os.PathLike) -> RawDataset:
    """CIFAR-10 (Krizhevsky, 2009) re-encoded as JPEG in a ``.tar.gz`` (see shared/data/README.md).

    Members are ``train/<class>/NNNN.jpg`` and ``test/<class>/NNNN.jpg``; labels follow the
    alphabetical order of the class folders (CIFAR-10's label order). The first call decodes every
    image (sorted by member name, so the order is fixed) and caches the tensors in ``cache_dir``.
    """
    archive_path = Path(archive).expanduser()
    if not archive_path.is_file():
        raise DatasetMissingError(
            "cifar10_jpeg", str(archive_path.parent), archive_path.name, downloadable=False
        )
    cache_path = Path(cache_dir).expanduser()
    cache_path.mkdir(parents=True, exist_ok=True)
    cache_file = _jpeg_cache_path(archive_path, cache_path)

    data = _load_cache(cache_file)
    if data is None:
        try:
            data = _decode_jpeg_archive(archive_path)
        except (tarfile.TarError, OSError) as err:
            raise UserError(f"dataset=cifar10_jpeg: cannot read {archive_path}: {_first_line(err)}") from None
        atomic_write_bytes(cache_file, lambda f: torch.save(data, f))
    return _make(
        "cifar10_jpeg", data["train_x"], data["train_y"], data["test_x"], data["test_y"], data["classes"]
    )
