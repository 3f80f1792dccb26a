"""`none`: returns the original model unchanged - the sanity row every table should have."""

from __future__ import annotations

from unlearnbench.methods.base import Method


class NoUnlearning(Method):
    needs = frozenset()

    def unlearn(self, model, data, ctx):
        return model
