"""dataset.train_subset: a seeded, class-stratified subset of the training images, taken before the val split."""

from __future__ import annotations

import json

import pytest
import torch

from unlearnbench.data.splits import subset_positions
from unlearnbench.errors import ConfigError
from unlearnbench.runner import run

LABELS = torch.arange(10).repeat_interleave(50)  # 10 classes x 50 samples


def test_subset_is_stratified_sorted_and_seeded():
    pos = subset_positions(LABELS, 100, seed=0)
    assert len(pos) == 100 and torch.equal(pos, pos.sort().values)
    assert torch.bincount(LABELS[pos]).tolist() == [10] * 10
    assert torch.equal(pos, subset_positions(LABELS, 100, seed=0))
    assert not torch.equal(pos, subset_positions(LABELS, 100, seed=1))
    assert torch.equal(subset_positions(LABELS, None, seed=0), torch.arange(500))


def test_a_subset_larger_than_the_data_keeps_everything():
    assert torch.equal(subset_positions(LABELS, 501, seed=0), torch.arange(500))


@pytest.mark.parametrize("bad", [0, 9, 1.5, True, "abc"])
def test_bad_subset_size_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=r"dataset.train_subset.*>= 10 \(one sample per class\) or null"):
        subset_positions(LABELS, bad, seed=0)


def test_run_on_a_subset_keeps_full_array_positions_and_its_own_cache_key(make_cfg, tmp_path):
    fast = ["method=none", "recipe.epochs=1", "eval=fast"]
    full = run(make_cfg(fast, subdir="full"))
    part = run(make_cfg([*fast, "dataset.train_subset=500"], subdir="part"))
    idx = json.loads((tmp_path / "part" / "run" / "indices.json").read_text())
    chosen = idx["train"] + idx["val"]
    assert (
        len(chosen) == 500 and len(set(chosen)) == 500 and max(chosen) < 1437
    )  # positions in the full train array
    assert part["sizes"]["forget"] + part["sizes"]["retain"] == len(idx["train"])
    assert part["sizes"]["test"] == full["sizes"]["test"]  # the test set is untouched
    assert part["cache"]["original"]["key"] != full["cache"]["original"]["key"]
    assert part["config"]["dataset"]["train_subset"] == 500
    small_test = run(make_cfg([*fast, "dataset.test_subset=100"], subdir="test"))
    test_positions = json.loads((tmp_path / "test" / "run" / "indices.json").read_text())["test"]
    assert small_test["sizes"]["test"] == 100 and len(set(test_positions)) == 100


def test_val_from_the_test_split_halves_it_in_random_split_order_and_trains_on_every_image():
    """dataset.val_source=test (∇τ's protocol): val is half of the test split, drawn as
    torch.utils.data.random_split(test, [0.5, 0.5]) with seed 42 draws it; the training split keeps all images."""
    from types import SimpleNamespace

    from unlearnbench.data.scenarios import RandomForget
    from unlearnbench.data.splits import build_splits

    x = torch.zeros(200, 1, 2, 2, dtype=torch.uint8)
    raw = SimpleNamespace(
        name="toy", classes=list(range(10)), train_x=x, train_y=torch.arange(200) % 10, test_x=x[:60],
        test_y=torch.arange(60) % 10, train_coarse=None, test_coarse=None,
    )  # fmt: skip
    splits = build_splits(raw, RandomForget(ratio=0.1, seed=0), 0.5, 42, val_source="test")
    expected = torch.utils.data.random_split(
        range(60), [0.5, 0.5], generator=torch.Generator().manual_seed(42)
    )
    assert splits.test.indices.tolist() == sorted(expected[0].indices)
    assert splits.val.indices.tolist() == sorted(expected[1].indices)
    assert len(splits.train) == 200 and len(splits.forget) == 20  # forget drawn from all training images
    with pytest.raises(ConfigError, match=r"dataset.val_source='dev' is not allowed; allowed: train or test"):
        build_splits(raw, RandomForget(ratio=0.1, seed=0), 0.5, 42, val_source="dev")
