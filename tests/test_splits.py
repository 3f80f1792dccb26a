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
