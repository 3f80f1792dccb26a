"""Configs: composing and building them, and checking them before any work (core), with the shared value checks
(checks)."""
