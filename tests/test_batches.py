"""Training batches: the augmentation's crops and flips, and the DataLoader path's batches."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.data.batches import Augment, LoaderBatches, TensorBatches


@pytest.mark.parametrize("padding, flip", [(2, True), (1, False), (0, True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_augment_crops_and_flips_each_image_by_its_own_draw(padding, flip, dtype):
    x = (torch.rand(40, 3, 6, 7) * 255).to(dtype)
    aug = Augment(crop_padding=padding, flip=flip)
    dy, dx, flips = aug.draw(len(x), torch.Generator().manual_seed(0))
    if padding:
        assert len(set(zip(dy.tolist(), dx.tolist()))) > 2 * padding
    if flip:
        assert 0 < int(flips.sum()) < len(x)
    out = aug.apply(x, dy, dx, flips)
    assert out.dtype == dtype and out.shape == x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    for i in range(len(x)):
        top, left = (int(dy[i]), int(dx[i])) if padding else (0, 0)
        crop = padded[i, :, top : top + 6, left : left + 7]
        assert torch.equal(out[i], crop.flip(2) if flip and flips[i] else crop)
    # __call__ draws from the generator exactly as draw() does.
    assert torch.equal(aug(x, torch.Generator().manual_seed(0)), out)


@pytest.mark.parametrize("drop_last", [False, True])
def test_dataloader_batches_equal_device_resident_batches(drop_last):
    x = torch.randint(0, 256, (103, 1, 8, 8), dtype=torch.uint8)
    y = torch.randint(0, 10, (103,))
    kwargs = dict(shuffle=True, augment=Augment(1, True), seed=3, drop_last=drop_last)
    resident = TensorBatches(x, y, 16, **kwargs)
    streamed = LoaderBatches(x, y, 16, device="cpu", num_workers=0, **kwargs)
    for _ in range(2):  # two epochs: new orders, generators still in step
        a, b = list(resident), list(streamed)
        assert len(a) == len(b) == (6 if drop_last else 7)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_device_side_draws_repeat_with_the_seed_and_differ_with_another():
    """The order, crops and flips are drawn from a generator on the data's device: the same seed gives the
    same batches (epoch after epoch), another seed other batches."""
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(50) % 10

    def epochs(seed: int) -> list[list[tuple]]:
        batches = TensorBatches(x, y, 16, shuffle=True, augment=Augment(2, True), seed=seed)
        assert batches.generator.device == x.device
        return [list(batches) for _ in range(2)]

    first, again, other = epochs(5), epochs(5), epochs(6)
    for epoch_a, epoch_b in zip(first, again):
        assert all(
            torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b)
        )
    assert not torch.equal(first[0][0][0], first[1][0][0])  # a new order and new draws each epoch
    assert not torch.equal(first[0][0][0], other[0][0][0])
