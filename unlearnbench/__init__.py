"""unlearnbench: config-driven benchmarking of machine-unlearning methods on image classifiers.

Without the command line: `run(compose(["method=imu", "dataset=digits"]))` returns the results dict.
"""

from __future__ import annotations

__version__ = "0.1.0"


def compose(overrides=(), output_dir=None):
    """The composed config for `overrides` (as typed after `unlearn`); see `unlearnbench.config.core.compose`."""
    from unlearnbench.config.core import compose as _compose

    return _compose(overrides, output_dir)


def run(cfg, **kwargs):
    """Run one experiment and return its results dict; see `unlearnbench.runner.run`."""
    from unlearnbench.runner import run as _run

    return _run(cfg, **kwargs)
