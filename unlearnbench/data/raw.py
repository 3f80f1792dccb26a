"""A dataset in memory (:class:`RawDataset`) and what every loader shares: building one with the promised
dtypes, and finding its files or downloading them where allowed (:func:`ensure_files`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from unlearnbench.errors import DatasetMissingError

# Errors a torchvision download raises when there is no network or a mirror fails.
_DOWNLOAD_ERRORS = (RuntimeError, URLError, OSError, ValueError)


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


def make_dataset(
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


def expand_root(root: str | os.PathLike) -> Path:
    """The data folder as configured, ``~`` expanded."""
    return Path(root).expanduser()


def _missing(root: Path, expected: list[str]) -> list[str]:
    """The expected relative paths that do not exist under root."""
    return [rel for rel in expected if not (root / rel).exists()]


def ensure_files(dataset: str, root: Path, expected: list[str], download: bool, fetch) -> None:
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
        raise DatasetMissingError(dataset, str(root), missing[0], download_error=first_line(err)) from None
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


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
