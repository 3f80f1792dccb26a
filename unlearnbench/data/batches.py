"""Batches made on the device: uint8 tensors held where the model runs, augmentation as batched ops.

`TensorBatches` is an iterable that Lightning's `Trainer.fit` and plain loops both accept. When the
data does not fit on the device, `LoaderBatches` streams the same batches through a CPU DataLoader.
Both yield `(images in [0, 1] as float32, int64 labels)` and draw all randomness from one seeded
generator. `TensorBatches` keeps it on the data's device: order, crops and flips are drawn where they are
used, so a GPU step never waits for a host-to-device copy, and a seed gives the same batches on the same
kind of device (a CUDA generator's stream differs from a CPU one's). `LoaderBatches` draws on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

# A training hook (e.g. Mnemonic codes) may replace samples after augmentation.
BatchHook = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Augment:
    """Random crop with zero padding + horizontal flip (the CIFAR training transform)."""

    crop_padding: int = 4
    flip: bool = True

    def draw(
        self, b: int, gen: torch.Generator
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(row offsets, column offsets, flips) for `b` images, drawn from `gen` in a fixed order, on its device."""
        dy = dx = flip = None
        dev = gen.device
        if self.crop_padding > 0:
            dy = torch.randint(0, 2 * self.crop_padding + 1, (b,), generator=gen, device=dev)
            dx = torch.randint(0, 2 * self.crop_padding + 1, (b,), generator=gen, device=dev)
        if self.flip:
            flip = torch.rand(b, generator=gen, device=dev) < 0.5
        return dy, dx, flip

    def apply(
        self, x: torch.Tensor, dy: torch.Tensor | None, dx: torch.Tensor | None, flip: torch.Tensor | None
    ) -> torch.Tensor:
        """Crop and flip every image of `x` (any dtype) by its drawn parameters, in one gather for any batch."""
        if dy is None and flip is None:
            return x
        b, c, h, w = x.shape
        p, dev = self.crop_padding, x.device
        dy, dx = (torch.zeros(b, dtype=torch.long, device=dev) if t is None else t.to(dev) for t in (dy, dx))
        src = torch.nn.functional.pad(x, (p, p, p, p)) if p else x
        col = dx
        if flip is not None:
            # A flipped crop is the crop at the mirrored offset of the flipped padded image: with the two
            # side by side, every row of every output image is one run of w pixels of `src`.
            col = torch.where(flip.to(dev), w + 4 * p - dx, dx)  # (w + 2p) + (2p - dx)
            src = torch.cat([src, src.flip(3)], 3)
        arange = torch.arange(max(b, c, h), device=dev)
        rows = (arange[:b, None, None] * c + arange[:c, None]) * src.shape[2] + dy[:, None, None] + arange[:h]
        starts = rows * src.shape[3] + col[:, None, None]
        # Copying runs (index_select over a view of every run) is ~5x faster on a CPU than indexing a view of
        # the windows, which copies pixel by pixel.
        runs = src.reshape(-1).unfold(0, w, 1)
        return runs.index_select(0, starts.flatten()).view(b, c, h, w)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.apply(x, *self.draw(x.shape[0], gen))


def to_float(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in [0, 1]."""
    return x_u8.float().div_(255.0)


class TensorBatches:
    """Shuffled (or ordered) batches from tensors that already live on the compute device."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        hook: BatchHook | None = None,
        drop_last: bool = False,
        channels_last: bool = False,
        limit: int | None = None,
    ):
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.augment = int(batch_size), shuffle, augment
        self.hook, self.drop_last, self.channels_last = hook, drop_last, channels_last
        self.limit = limit  # at most this many batches a pass (runtime.limit_batches, for smoke runs)
        # On the data's device: drawing there needs no copy, so no step waits for the host.
        self.generator = torch.Generator(device=x.device).manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.y)
        full = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return full if self.limit is None else min(full, self.limit)

    def _order(self) -> torch.Tensor:
        n = len(self.y)
        dev = self.generator.device
        return (
            torch.randperm(n, generator=self.generator, device=dev)
            if self.shuffle
            else torch.arange(n, device=dev)
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for drawn in self.draws():
            yield self._make(*drawn)

    def draws(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, tuple | None]]:
        """(uint8 images, labels, augmentation parameters or None) of each batch, drawn from the generator
        in the order iterating draws them; `augmented` then `finish` turn one into the batch. Split so
        that several streams can be augmented in one op (training/batched.py), drawing as when alone."""
        order = self._order()
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            # index_select copies whole images; `x[idx]` copies pixel by pixel (~10x slower on a CPU).
            yield self.x.index_select(0, idx), self.y[idx], self._draw_crop_flip(len(idx))

    def _draw_crop_flip(self, n: int) -> tuple | None:
        return self.augment.draw(n, self.generator) if self.augment is not None else None

    def augmented(self, x: torch.Tensor, crop_flip: tuple | None) -> torch.Tensor:
        return x if crop_flip is None else self.augment.apply(x, *crop_flip)

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The steps after augmentation: the training hook (which draws next) and the memory format."""
        if self.hook is not None:
            x, y = self.hook(x, y, self.generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _make(
        self, x_u8: torch.Tensor, y: torch.Tensor, crop_flip: tuple | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Augmented as uint8 (crops and flips copy pixels: the same values, a quarter of the bytes).
        return self.finish(to_float(self.augmented(x_u8, crop_flip)), y)


class LoaderBatches(TensorBatches):
    """The same batches for data kept in host memory: a DataLoader slices, the device augments."""

    def __init__(self, x, y, batch_size, device: torch.device, num_workers: int = 2, **kwargs):
        super().__init__(x.cpu(), y.cpu(), batch_size, **kwargs)
        self.device, self.num_workers = torch.device(device), num_workers

    def __iter__(self):
        from torch.utils.data import DataLoader, TensorDataset

        # Index batches as the sampler: the loader gathers each batch, never a reordered copy of the data.
        chunks = list(self._order().split(self.batch_size))[: len(self)]
        loader = DataLoader(
            TensorDataset(self.x, self.y),
            sampler=chunks,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for x_u8, y in loader:
            x_u8, y = x_u8.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield self._make(x_u8, y, self._draw_crop_flip(len(y)))
