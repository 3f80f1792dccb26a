"""Running the GPU check's steps (each under its time budget, a failure recorded and the next one run) and
writing what they measured: the JSON and the doc section (a table of every goal, then what each step ran)."""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import time
import traceback
from pathlib import Path

import torch

from unlearnbench.bench.gpu_check.core import Check, Step, StepTimeout, time_limit
from unlearnbench.report.sections import replace_section
from unlearnbench.report.tables import markdown


def not_run(step: Step, why: str) -> dict:
    """A step's entry before (or instead of) running it: every goal listed, nothing measured."""
    return {
        "name": step.name,
        "title": step.title,
        "status": "not run",
        "budget_s": step.budget_s,
        "seconds": 0.0,
        "error": why,
        "goals": [goal.judge({}) for goal in step.goals],
        "figures": {},
    }


def run_step(step: Step, check: Check, seconds_left: float) -> dict:
    budget = min(step.budget_s, seconds_left)
    entry = {"name": step.name, "title": step.title, "budget_s": step.budget_s, "seconds": 0.0, "error": None}
    figures: dict = {}
    if budget < 5:
        entry["status"], entry["error"] = "skipped", "no time left in the run's budget"
    else:
        print(f"\n=== {step.name}: {step.title} (budget {budget:.0f} s)", flush=True)
        start = time.perf_counter()
        try:
            with time_limit(budget):
                figures = step.fn(check)
            entry["status"] = "ok"
        except (Exception, SystemExit) as err:  # one failing step must not lose the others' figures
            entry["status"] = "timeout" if isinstance(err, StepTimeout) else "error"
            entry["error"] = f"{type(err).__name__}: {err}"
            entry["traceback"] = traceback.format_exc().splitlines()[-12:]
            traceback.print_exc()
        entry["seconds"] = time.perf_counter() - start
        for folder in check.scratch:
            shutil.rmtree(folder, ignore_errors=True)
        check.scratch.clear()
        gc.collect()
        if check.device.type == "cuda":
            torch.cuda.empty_cache()
    entry["goals"] = [goal.judge(figures) for goal in step.goals]
    entry["figures"] = figures
    for goal in entry["goals"]:
        print(f"  {goal['what']}: {goal['shown'] or '-'} (goal {goal['goal']}): {goal['status']}", flush=True)
    return entry


def keep_earlier(report: dict, earlier: dict, steps: list[str]) -> None:
    """Give the steps not run now (not in `steps`) their entries from an `earlier` run, if it ran them."""
    before = {step["name"]: step for step in earlier["steps"]}
    for i, step in enumerate(report["steps"]):
        old = before.get(step["name"])
        if step["name"] not in steps and old is not None and old["status"] != "not run":
            report["steps"][i] = {**old, "earlier_run": old.get("earlier_run") or earlier["started"]}


def section(report: dict, json_path: str) -> str:
    """The doc section: one table of every goal, then what each step ran."""
    lines = [
        "## GPU check (`make gpu-check`)",
        "",
        f"Written by `scripts/gpu_check.py` ({_when(report['started'])}{', **tiny CPU run**' if report['tiny'] else ''}) on "
        f"{report['device_name']}, torch {report['torch']}, Lightning {report['lightning']}: "
        f"{report['total_s']:.0f} s of a {report['budget_s']:.0f} s budget. The run's JSON "
        f"(`{Path(json_path).name}`) holds every figure. Goals are for one H100 / H200-class GPU."
        + (
            " Steps marked 'run of ...' were not run this time: their entries are an earlier run's (`--keep`)."
            if any(step.get("earlier_run") for step in report["steps"])
            else ""
        ),
        "",
    ]
    rows = []
    for step in report["steps"]:
        for goal in step["goals"]:
            status = goal["status"] if step["status"] == "ok" else f"{goal['status']} (step {step['status']})"
            note = f" ({goal['note']})" if goal["note"] else ""
            rows.append(
                (
                    step["title"],
                    goal["what"],
                    goal["shown"] or "-",
                    goal["goal"],
                    status + _earlier(step) + note,
                )
            )
    lines.append(markdown(("step", "figure", "value", "goal", "status"), rows, "llrll"))
    lines += ["", "What each step ran:", ""]
    for step in report["steps"]:
        what = step["figures"].get("setup") or step["error"] or ""
        lines.append(
            f"- **{step['name']}** ({step['status']}, {step['seconds']:.0f} s of {step['budget_s']:.0f}"
            f"{_earlier(step)}): {what}"
        )
    return "\n".join(lines)


def _when(started: str) -> str:
    return started[:16].replace("T", " ") + " UTC"


def _earlier(step: dict) -> str:
    """ ", run of <when>" for a step whose entry an earlier run measured (`--keep`), else ""."""
    return f", run of {_when(step['earlier_run'])}" if step.get("earlier_run") else ""


def write_outputs(report: dict, args: argparse.Namespace) -> None:
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=str))
    if args.doc:
        replace_section(Path(args.doc), "gpu-check", section(report, args.json))
