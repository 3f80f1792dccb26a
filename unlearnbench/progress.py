"""Progress that fits where it is shown: bars on a terminal, a logged line per epoch elsewhere.

A bar redrawn with carriage returns is unreadable in a log file, a CI log or a Slurm output file, and a bar
drawn only when the training ends leaves minutes of silence. Outside a terminal (and from the Python API,
which shows no bars) each training epoch is one `logging` line instead, at most one per `EVERY_S` seconds
besides the first and the last epoch: the command line shows them, an unconfigured API prints nothing.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("unlearnbench.progress")

EVERY_S = 10.0


def interactive() -> bool:
    """Whether both output streams are a terminal (bars would be redrawn in place, not appended)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class EpochLines:
    """`update(epoch, **values)` after each of `epochs` epochs logs `desc: epoch e/E, key value, ... (t s)`."""

    def __init__(self, desc: str, epochs: int, every_s: float = EVERY_S):
        self.desc, self.epochs, self.every_s = desc, epochs, every_s
        self.start = self.last = time.perf_counter()
        self.lines = 0

    def update(self, epoch: int, **values: float) -> None:
        now = time.perf_counter()
        done = epoch + 1
        if self.lines and done < self.epochs and now - self.last < self.every_s:
            return
        shown = "".join(f", {key} {value:.4g}" for key, value in values.items())
        log.info("%s: epoch %d/%d%s (%.0f s)", self.desc, done, self.epochs, shown, now - self.start)
        self.last, self.lines = now, self.lines + 1
