"""unlearnbench: config-driven benchmarking of machine-unlearning methods on image classifiers."""

__version__ = "0.1.0"
