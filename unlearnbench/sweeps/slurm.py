"""`launcher=submitit_slurm` on a cluster without Slurm accounting: job states from `squeue`, one warning line.

submitit follows its jobs with `sacct`. Where accounting storage is disabled, sacct always fails: each poll
(at 2, 4, 8, ... s, then every 10 min) prints sacct's error and submitit's warning three times, and a job
that dies without writing its result (time limit, out of memory, scancel, a crash) keeps the sweep waiting
forever, since its state stays unknown. `SacctCheck` (a Hydra callback that `conf/launcher/submitit_slurm.yaml`
sets) checks once per sweep; when accounting is disabled it says so in one line and has submitit read job
states from `squeue` instead. Other warnings are left alone.
"""

from __future__ import annotations

import getpass
import logging
import subprocess
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

log = logging.getLogger(__name__)


def accounting_disabled() -> bool:
    """True when `sacct` answers that Slurm accounting storage is disabled (not on other sacct failures)."""
    try:
        out = subprocess.run(
            ["sacct", "--noheader", "-X", "-j", "1"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode != 0 and "accounting storage is disabled" in out.stderr.lower()


class SqueueWatcher(SlurmInfoWatcher):
    """submitit's job states from `squeue`, which lists pending, running and recently ended jobs (with their end
    state). A job it no longer lists has ended: FINISHED (submitit then reads its result, or reports it has none)."""

    def _make_command(self) -> list[str] | None:
        if not self._registered - self._finished:
            return None
        return [
            "squeue",
            "--noheader",
            "--array",
            "--states=all",
            "--format=%i|%T",
            f"--user={getpass.getuser()}",
        ]

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        listed = dict(line.strip().split("|", 1) for line in text.splitlines() if "|" in line)
        return {
            job: {"JobID": job, "State": listed.get(job, "FINISHED")}
            for job in self._registered - self._finished
        }


class SacctCheck(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not accounting_disabled():
            return
        SlurmJob.watcher = SqueueWatcher(delay_s=600)
        log.warning(
            "Slurm accounting is disabled on this cluster (sacct fails): job states come from squeue; "
            f"job logs: {config.hydra.sweep.dir}/.submitit/"
        )
