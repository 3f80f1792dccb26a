"""Helpers several metrics share: attacks, per-sample features, shadow models, forgetting quality (not metrics
themselves: the metrics are the modules one level up)."""
