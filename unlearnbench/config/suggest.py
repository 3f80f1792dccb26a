"""Suggestions for a misspelt key or option: "did you mean X?" and the keys there are."""

from __future__ import annotations

import difflib
import re

from unlearnbench.config.core import group_options


def did_you_mean(word: str, candidates) -> list[str]:
    """["did you mean X?"] for the closest candidate, or [] when none is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return [f"did you mean {close[0]}?"] if close else []


def unknown_key(key: str, argv: list[str], known: list[str] | None = None) -> str:
    """`forget_rato is not a config key; did you mean forget_ratio?; keys at the top level: ...`"""
    parent, _, leaf = key.rpartition(".")
    known = _keys_under(parent, argv) if known is None else known
    where = f"'{parent}'" if parent else "the top level"
    listing = [f"keys at {where}: {', '.join(sorted(known))}"] if known else []
    in_sweep = " (in at least one job of the sweep)" if {"-m", "--multirun"} & set(argv) else ""
    return "; ".join([f"{key} is not a config key{in_sweep}", *did_you_mean(leaf, known), *listing])


def _keys_under(parent: str, argv: list[str]) -> list[str]:
    """Keys of the composed config at `parent`, with the group choices of `argv` applied (best effort)."""
    from omegaconf import OmegaConf

    from unlearnbench.config.core import compose

    choices = [a for a in argv if re.fullmatch(r"[\w/]+=[\w.\-/]+", a) and group_options(a.split("=")[0])]
    try:
        node = OmegaConf.select(compose(choices), parent) if parent else compose(choices)
    except Exception:  # a second problem in the input: no suggestion rather than a confusing one
        return []
    return [str(k) for k in node.keys()] if OmegaConf.is_dict(node) else []
