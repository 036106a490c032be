"""Per-check state machine: consecutive failures and successes turn results into states."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from monitor.domain.flapping import push, still_flapping, suspect
from monitor.probes.base import ProbeResult, Reason


class CheckStatus(StrEnum):
    """What forewarn believes about one check."""

    UNKNOWN = "unknown"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    FLAPPING = "flapping"  # shown instead of the status while results keep changing


@dataclass(frozen=True, slots=True)
class Transition:
    """A check changed state: the unit the incident logic works from."""

    check_id: str
    old: CheckStatus
    new: CheckStatus
    at: float
    reason: Reason | None
    detail: str
    first_failure_at: float | None  # start of the failing run that confirmed DOWN


@dataclass(frozen=True, slots=True)
class CheckState:
    """Everything the detector remembers about one check between results."""

    failure_threshold: int
    success_threshold: int
    status: CheckStatus = CheckStatus.UNKNOWN
    failures: int = 0  # consecutive failed results
    successes: int = 0  # consecutive answered results, slow ones included (up to the threshold)
    slow: int = 0  # consecutive degraded (slow) results
    fast: int = 0  # consecutive healthy results (up to success_threshold)
    failing_since: float | None = None  # first failed probe of the current outage
    reason: Reason | None = None
    detail: str = ""
    history: tuple[bool, ...] = ()  # recent results, oldest first, True where failed
    flapping: bool = False
    seen_up: bool = False  # answered at least once since it was added or forewarn started

    @property
    def shown(self) -> CheckStatus:
        """What the check is reported as: FLAPPING hides the status while it flaps."""
        return CheckStatus.FLAPPING if self.flapping else self.status

    @property
    def confirming(self) -> bool:
        """A change has started but is not yet settled, or it may flap: re-probe soon.

        A fresh outage (fewer than twice ``failure_threshold`` failures in a row) is re-probed
        fast too: a false alarm made of a few lost requests then ends within seconds, long
        before ``customer_delay`` lets customers hear of it.
        """
        if self.status is CheckStatus.DOWN:
            recovering = 0 < self.successes < self.success_threshold
            fresh = 0 < self.failures < 2 * self.failure_threshold
            return recovering or fresh or self.flapping
        return 0 < self.failures < self.failure_threshold or suspect(self.history)


def observe(
    state: CheckState, result: ProbeResult, now: float
) -> tuple[CheckState, Transition | None]:
    """Fold one probe result into the check's state; return a Transition when ``shown`` changes."""
    if result.ok and not result.degraded and calm(state):
        # What the full fold below gives in this case, field by field: only the window moves.
        return replace(state, history=push(state.history, False)), None
    return observe_fully(state, result, now)


def calm(state: CheckState) -> bool:
    """Up with nothing pending: a healthy result then changes only the failure window."""
    return (
        state.status is CheckStatus.UP
        and state.failures == 0
        and state.slow == 0
        and state.successes == state.fast == state.success_threshold
        and state.seen_up
        and not state.flapping
        and state.failing_since is None
        and state.reason is None
        and not state.detail
        and not any(state.history)
    )


def observe_fully(
    state: CheckState, result: ProbeResult, now: float
) -> tuple[CheckState, Transition | None]:
    """``observe`` without its shortcut for calm checks (the reference it is tested against)."""
    new, first_failure_at = _fold(state, result)
    history = push(state.history, not result.ok)
    new = replace(
        new,
        history=history,
        flapping=still_flapping(state.flapping, history),
        seen_up=state.seen_up or result.ok,
    )
    # While flapping, the status underneath keeps moving silently: telling customers about
    # every swing is the noise flap detection exists to suppress.
    if new.shown is state.shown:
        return new, None
    return new, Transition(
        check_id=result.check_id,
        old=state.shown,
        new=new.shown,
        at=now,
        reason=new.reason,
        detail=new.detail,
        first_failure_at=first_failure_at if new.shown is CheckStatus.DOWN else state.failing_since,
    )


def _fold(state: CheckState, result: ProbeResult) -> tuple[CheckState, float | None]:
    """The up/degraded/down machine alone: the next state and when its failing run began."""
    down = state.status is CheckStatus.DOWN
    if not result.ok:
        keeps_start = state.failures > 0 or down
        new = replace(
            state,
            failures=state.failures + 1,
            successes=0,
            slow=0,
            fast=0,
            failing_since=state.failing_since if keeps_start else result.at,
            reason=result.reason,
            detail=result.detail,
        )
        target = CheckStatus.DOWN if new.failures >= state.failure_threshold else state.status
    else:
        # Counts stop at the threshold they are compared with: nothing reads past it, and a
        # check that keeps answering then reaches a fixed point the engine can skip.
        cap = state.success_threshold
        new = replace(
            state,
            failures=0,
            successes=min(state.successes + 1, cap),
            slow=state.slow + 1 if result.degraded else 0,
            fast=0 if result.degraded else min(state.fast + 1, cap),
            failing_since=state.failing_since if down else None,
            reason=result.reason if result.degraded else None,
            detail=result.detail if result.degraded else "",
        )
        target = _answered_target(new, result.degraded)
    first_failure_at = new.failing_since
    if target is not state.status and target is not CheckStatus.DOWN:
        new = replace(new, failing_since=None)  # the outage is over: the next starts afresh
    return replace(new, status=target), first_failure_at


def _answered_target(state: CheckState, degraded: bool) -> CheckStatus:
    """Where a check goes when its target answered (quickly or slowly)."""
    answered = CheckStatus.DEGRADED if degraded else CheckStatus.UP
    match state.status:
        case CheckStatus.UNKNOWN:
            return answered
        case CheckStatus.DOWN:
            return answered if state.successes >= state.success_threshold else state.status
        case CheckStatus.UP if state.slow >= state.failure_threshold:
            return CheckStatus.DEGRADED
        case CheckStatus.DEGRADED if state.fast >= state.success_threshold:
            return CheckStatus.UP
    return state.status


def rollup(statuses: list[CheckStatus], down_when: str | int) -> CheckStatus:
    """A service's status from its checks': ``any`` down, ``all`` down, or at least N down."""
    if not statuses:
        return CheckStatus.UNKNOWN
    downs = sum(s is CheckStatus.DOWN for s in statuses)
    needed = 1 if down_when == "any" else len(statuses) if down_when == "all" else int(down_when)
    if downs >= min(needed, len(statuses)):
        return CheckStatus.DOWN
    if all(s is CheckStatus.MAINTENANCE for s in statuses):
        return CheckStatus.MAINTENANCE
    if downs or any(s is CheckStatus.DEGRADED for s in statuses):
        return CheckStatus.DEGRADED
    if all(s is CheckStatus.UNKNOWN for s in statuses):
        return CheckStatus.UNKNOWN
    return CheckStatus.UP
