"""Flap detection after Icinga 2: weighted recent state changes with start/stop hysteresis."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

HISTORY = 21  # results kept: 20 gaps between them are the state-change slots
HIGH, LOW = 30.0, 25.0  # start flapping above HIGH %, stop below LOW %

# Result classes: a change is two consecutive results of different classes.
ANSWERED, SLOW, FAILED = 0, 1, 2

_SLOTS = HISTORY - 1


def result_class(ok: bool, degraded: bool) -> int:
    """The class of one probe result: answered, answered slowly, or failed."""
    if not ok:
        return FAILED
    return SLOW if degraded else ANSWERED


def flapping_percent(history: Sequence[int]) -> float:
    """Icinga 2's flapping value, 0-99 %, of result classes ordered oldest to newest."""
    recent = list(history[-HISTORY:])
    # Align to the newest slot: with fewer results the missing older slots hold no change.
    first_slot = _SLOTS - (len(recent) - 1)
    # Weights in hundredths (0.80 + 0.02·i → 80 + 2·i) keep the sum exact: 7.82 is 782.
    total = sum(
        80 + 2 * (first_slot + gap)
        for gap, (before, after) in enumerate(pairwise(recent))
        if before != after
    )
    return total / _SLOTS  # 100 · (total / 100) / 20


def still_flapping(flapping: bool, percent: float, high: float = HIGH, low: float = LOW) -> bool:
    """Whether a check flaps now: it starts above ``high`` and only stops below ``low``."""
    if flapping:
        return percent >= low
    return percent > high


def push(history: tuple[int, ...], result_class: int) -> tuple[int, ...]:
    """``history`` with ``result_class`` appended, keeping the newest HISTORY results."""
    return (*history, result_class)[-HISTORY:]
