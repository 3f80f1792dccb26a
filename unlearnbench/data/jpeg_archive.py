"""CIFAR-10 re-encoded as JPEGs in a ``.tar.gz`` (class folders): decoded once, then cached as a ``.pt`` file.

See :func:`load_cifar10_jpeg`; shared/data/README.md says where the archive comes from.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from unlearnbench.data.raw import RawDataset, first_line, make_dataset
from unlearnbench.errors import DatasetMissingError, UserError
from unlearnbench.files import atomic_write_bytes

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
            raise UserError(f"dataset=cifar10_jpeg: cannot read {archive_path}: {first_line(err)}") from None
        atomic_write_bytes(cache_file, lambda f: torch.save(data, f))
    return make_dataset(
        "cifar10_jpeg", data["train_x"], data["train_y"], data["test_x"], data["test_y"], data["classes"]
    )
