"""Wall-clock steps, told from drift by a steady clock: what is being timed moves with them.

An NTP step, a hand-set clock or a restored VM moves the wall clock by minutes or hours at
once. Incident cadence, customer_delay and stable_for count from wall times, so without this
a step forward would send an update early and resolve a recovery untested, and record an
hour-long outage that never was; a step back would hold updates for an hour and record a
recovery before the failure. The engine shifts what it is timing by the step instead: the
times it records are in the clock's new frame (usually the corrected one), and every
duration it measures is the real elapsed one.
"""

from __future__ import annotations

from dataclasses import replace

from monitor.domain.detector import CheckState
from monitor.domain.incidents import Incident, ServiceView

STEP_S = 2.0
"""A disagreement between wall and steady elapsed times this large is a step, not drift.

NTP slews at most 0.5 ms per second, and both clocks advance through an event-loop stall,
so between two ticks (250 ms) anything near this threshold is a step. Smaller steps are
ignored: times a second or so off do no harm.
"""

Mark = tuple[float, float]
"""A wall time and a steady time read together."""


def step(mark: Mark | None, now: float, steady: float) -> float:
    """How far the wall clock stepped since ``mark`` beyond the steady clock (0.0: no step)."""
    if mark is None:
        return 0.0
    skew = (now - mark[0]) - (steady - mark[1])
    return skew if abs(skew) >= STEP_S else 0.0


def _moved(at: float | None, by: float) -> float | None:
    return None if at is None else at + by


def shift_incident(incident: Incident, by: float) -> Incident:
    """An open incident with every time it is counting from moved by ``by``.

    Its id keeps the first failure's original time: ids and notice keys never change.
    """
    return replace(
        incident,
        opened_at=incident.opened_at + by,
        first_failure_at=incident.first_failure_at + by,
        customers_told_at=_moved(incident.customers_told_at, by),
        next_update_at=_moved(incident.next_update_at, by),
        recovered_at=_moved(incident.recovered_at, by),
    )


def shift_state(state: CheckState, by: float) -> CheckState:
    """A check's state with the start of its failing run moved by ``by``."""
    if state.failing_since is None:
        return state
    return replace(state, failing_since=state.failing_since + by)


def shift_view(view: ServiceView, by: float) -> ServiceView:
    """A service view with its status's start and first failure moved by ``by``."""
    return replace(view, since=view.since + by, first_failure_at=_moved(view.first_failure_at, by))
