"""Whether a method's row shows unlearning at all: the same rule for the console and the report.

A row is flagged when its forget accuracy stays within noise of the original's (nothing was forgotten), or
when its Avg Gap is worse than doing nothing's (the original's Avg Gap): either way it is not "a result like
any other".
"""

from __future__ import annotations

import math

# The key results.json keeps SalUn's Avg Gap under (metrics/avg_gap.py's default): the console and the report
# show it apart from the other metrics, and the verdict below reads it.
AVG_GAP = "avg_gap"

# One point: the smallest forget-accuracy change read as a change (a single run has no seed spread to go by).
FORGET_TOLERANCE = 0.01


def did_not_unlearn(
    method: dict,
    original: dict,
    tolerance: float = FORGET_TOLERANCE,
    avg_gap_noise: float = 0.0,
    retrain: dict | None = None,
    forget_size: int | None = None,
) -> list[str]:
    """Why `method`'s metric values show no unlearning against `original`'s ([] when they do).

    `tolerance`: the forget-accuracy difference still read as noise, widened to two standard errors of the
    difference of two accuracies over `forget_size` samples when given. The forget-accuracy verdict is only given where
    `retrain`'s forget accuracy (when known) is itself farther than that from the original's: where Retrain
    does not move either, staying put is the right answer. `avg_gap_noise`: how far the method's Avg Gap (a
    fraction, as stored) may exceed the original's before it counts as worse.
    """
    reasons = []
    forget, before = method.get("forget_acc"), original.get("forget_acc")
    reference = (retrain or {}).get("forget_acc")

    def noise(
        a: float, b: float
    ) -> float:  # two standard errors of the difference of two accuracies over D_f
        if not forget_size:
            return tolerance
        return max(tolerance, 2 * math.sqrt((a * (1 - a) + b * (1 - b)) / forget_size))

    if forget is not None and before is not None:
        something_to_forget = reference is None or abs(reference - before) > noise(reference, before)
        if something_to_forget and abs(forget - before) <= noise(forget, before):
            reasons.append(
                f"forget accuracy {100 * forget:.2f} vs the original's {100 * before:.2f} "
                f"(within {100 * noise(forget, before):.1f} points: noise)"
            )
    gap, nothing = method.get(AVG_GAP), original.get(AVG_GAP)
    if gap is not None and nothing is not None and gap > nothing + avg_gap_noise:
        reasons.append(f"Avg Gap {100 * gap:.2f} vs doing nothing's {100 * nothing:.2f}")
    return reasons
