"""Every step of the GPU check, in the order they run: each declares itself with `@step` where it is defined,
in the order of its module; the modules run in the order below (the training steps first: CUDA start-up and
cuDNN's autotuning fall in the first; the projection needs the training rate and the mission's figures)."""

from __future__ import annotations

from unlearnbench.bench.gpu_check import evaluation, runs, training
from unlearnbench.bench.gpu_check.core import DECLARED

STEPS = tuple(step for module in (training, runs, evaluation) for step in DECLARED[module.__name__])
