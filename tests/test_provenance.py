"""Provenance: what a result records about where it ran, and the code versions in the cache keys."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch

from unlearnbench import provenance
from unlearnbench.cli.console import summary_line
from unlearnbench.runner import run

QUICK = ["method=none", "recipe.epochs=1", "eval=fast"]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_runs_differing_only_in_thread_count_record_different_provenance(make_cfg, restore_threads):
    one = run(make_cfg([*QUICK, "runtime.threads=1"], subdir="one"))
    two = run(make_cfg([*QUICK, "runtime.threads=2"], subdir="two"))
    assert (one["env"]["threads"], two["env"]["threads"]) == (1, 2)
    assert "1 threads" in summary_line(one) and "2 threads" in summary_line(two)
    for env in (one["env"], two["env"]):
        for key in ("commit", "dirty", "torch", "cuda", "cudnn", "cpu", "device", "deterministic_algorithms"):
            assert key in env, key
    assert one["env"]["cpu"] and one["env"]["commit"] == two["env"]["commit"]


def test_every_listed_code_entry_is_found_and_a_wrong_one_is_an_error():
    for entry in (*provenance.TRAINING_CODE, *provenance.METRIC_CODE):
        assert provenance.entry_source(entry), entry
    with pytest.raises(ValueError, match="TrainedModels.no_such_step"):
        provenance.entry_source("unlearnbench.training.models:TrainedModels.no_such_step")
    with pytest.raises(ValueError, match="no_such_module"):
        provenance.entry_source("unlearnbench.no_such_module")


def test_changed_training_code_misses_the_model_cache(make_cfg, tmp_path, monkeypatch):
    """A stand-in module listed as training code: editing its code retrains, editing a comment does not."""
    code = tmp_path / "stand_in_training.py"
    code.write_text("def step(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(provenance, "TRAINING_CODE", (*provenance.TRAINING_CODE, "stand_in_training"))

    def original_hit(name: str) -> bool:
        provenance.code_version.cache_clear()
        cfg = make_cfg(QUICK, subdir=name)
        cfg.paths.cache_dir = str(tmp_path / "shared-cache")
        return run(cfg)["cache"]["original"]["hit"]

    try:
        assert not original_hit("first")
        code.write_text("def step(x):\n    # a comment changes no model\n    return x + 1\n")
        assert original_hit("comment")
        code.write_text("def step(x):\n    return x + 2\n")
        assert not original_hit("changed")
    finally:
        provenance.code_version.cache_clear()


def test_edited_cached_metric_values_are_detected_and_recomputed(make_cfg, caplog):
    overrides = ["method=none", "recipe.epochs=1"]
    first = run(make_cfg(overrides))
    stored = sorted(Path(first["cache"]["original"]["path"]).parents[1].glob("metrics/original-*.json"))
    assert len(stored) == 1
    content = json.loads(stored[0].read_text())
    assert content["values"]["forget_acc"] == first["original"]["metrics"]["forget_acc"]
    content["values"]["forget_acc"] = 0.123  # a hand edit that keeps the file valid JSON
    stored[0].write_text(json.dumps(content))
    with caplog.at_level(logging.WARNING):
        again = run(make_cfg(overrides))
    assert "fail their checksum" in caplog.text
    assert again["original"]["metrics"]["forget_acc"] == first["original"]["metrics"]["forget_acc"]
    assert json.loads(stored[0].read_text())["values"]["forget_acc"] != 0.123  # rewritten
    (aside,) = stored[0].parent.glob("original-*.corrupt-*.json")  # the edited file kept aside, not lost
    assert json.loads(aside.read_text())["values"]["forget_acc"] == 0.123


def test_readme_determinism_promise_names_what_it_covers():
    """The promise is tested by test_reliability's identical-runs test at a fixed thread count; the README must
    not promise more than that."""
    text = " ".join(README.read_text().split())
    promise = re.search(r"\*\*Determinism\.\*\*(.*?)(?= - \*\*|## )", text).group(1)
    for condition in ("same command and seed", "same thread count", "same machine", "same torch version"):
        assert condition in promise, condition
    assert "runtime.threads" in promise and "env" in promise
