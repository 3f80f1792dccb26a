"""One prepared GPU check: every speed and accuracy goal of the project, measured in one run (see main.py).

core.py holds what the steps share (settings, goals, `Check`, the time limit); training.py, runs.py and
evaluation.py the steps, each declared with `@step`; steps.py their order; report.py running them and writing
the JSON and doc section; main.py the command line (`python -m unlearnbench.bench.gpu_check`).
"""

from __future__ import annotations

from unlearnbench.bench.gpu_check.core import SETTINGS, Check, Goal, Step, StepTimeout, bf16_peak, time_limit
from unlearnbench.bench.gpu_check.evaluation import shadow_args
from unlearnbench.bench.gpu_check.main import main, parse_args
from unlearnbench.bench.gpu_check.report import keep_earlier, not_run, run_step, section
from unlearnbench.bench.gpu_check.runs import IMU_FAST_PATH, mission_overrides
from unlearnbench.bench.gpu_check.steps import STEPS
from unlearnbench.report.sections import doc_markers

START, END = doc_markers("gpu-check")

__all__ = [
    "END",
    "IMU_FAST_PATH",
    "SETTINGS",
    "START",
    "STEPS",
    "Check",
    "Goal",
    "Step",
    "StepTimeout",
    "bf16_peak",
    "keep_earlier",
    "main",
    "mission_overrides",
    "not_run",
    "parse_args",
    "run_step",
    "section",
    "shadow_args",
    "time_limit",
]
