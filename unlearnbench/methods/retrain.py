"""`retrain`: train from scratch on D_r with the original recipe - the exact-unlearning oracle.

Shares its cache entry with the Retrain reference model, so it is trained at most once per forget set.
"""

from __future__ import annotations

from unlearnbench.methods.base import Method


class Retrain(Method):
    needs = frozenset({"retain"})

    def unlearn(self, model, data, ctx):
        return ctx.train_from_scratch(data.retain)
