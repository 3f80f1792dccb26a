"""Validators for config values: each raises a one-line `ConfigError` (key, bad value, what is allowed).

Methods, metrics, data sources and `config.validate` all check their arguments with these, so a bad
value reads the same wherever it is caught. Each returns the value, so a constructor can check and store
in one line.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, TypeVar

from unlearnbench.errors import ConfigError

T = TypeVar("T")

# Integer lower bounds with a name people expect in a message ("a positive integer").
_INT_WORDS = {0: "non-negative", 1: "positive"}


def is_number(value: Any) -> bool:
    """An int or float, but not a bool (YAML's `true` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(key: str, value: Any, allowed: str, allow_none: bool, hint: str | None) -> ConfigError:
    text = ("null or " if allow_none else "") + allowed + (f" ({hint})" if hint else "")
    return ConfigError(key, value, text)


def check_number(
    key: str,
    value: T,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
    hint: str | None = None,
) -> T:
    """`value` is a number from `low` to `high` (each bound included unless `*_open`), or None if allowed."""
    if value is None and allow_none:
        return value
    if (
        is_number(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    ):
        return value
    if math.isinf(high):
        allowed = f"a number {'>' if low_open else '>='} {low}"
    elif math.isinf(low):
        allowed = f"a number {'<' if high_open else '<='} {high}"
    else:
        allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    raise _fail(key, value, allowed, allow_none, hint)


def check_int(
    key: str,
    value: T,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
    hint: str | None = None,
) -> T:
    """`value` is an integer in [minimum, maximum] (None: unbounded on that side), or None if allowed."""
    if value is None and allow_none:
        return value
    if is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value
    if minimum is not None and maximum is not None:
        allowed = f"an integer in [{minimum}, {maximum}]"
    elif minimum in _INT_WORDS:
        allowed = f"a {_INT_WORDS[minimum]} integer (>= {minimum})"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    else:
        allowed = "an integer" if maximum is None else f"an integer <= {maximum}"
    raise _fail(key, value, allowed, allow_none, hint)


def check_choice(key: str, value: T, allowed: Collection[Any], hint: str | None = None) -> T:
    """`value` is one of `allowed` (listed in the message in the order given)."""
    if value not in allowed:
        raise _fail(key, value, ", ".join(str(a) for a in allowed), False, hint)
    return value
