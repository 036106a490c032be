"""One verdict per check from the locations probing it, and which locations are unhealthy.

Each location runs its own detector on its own results; ``decide`` rolls their verdicts up.
A location whose own canary fails is not counted: its failures say more about its network than
about the target. A check is DOWN when more than half of the counted locations confirm it down
(2 of 2, 2 of 3), locations that have no verdict yet included: a location that has not probed
yet cannot confirm, and the daemon re-probes a fresh failure within seconds. It is UP when it
is not down and some counted location sees it up, and UNKNOWN otherwise: with no location to
count it is never DOWN.

A location is unhealthy when its own canary fails, or when at one time it sees down at least
``DISSENT_AT`` checks that the quorum holds up: a target down from one place only is the
target's affair, several at once point to that place's network. Ops hear of it; customers
hear of nothing, since the checks stay up.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum

from monitor.domain.detector import CheckStatus
from monitor.probes.base import Reason

DISSENT_AT = 3  # checks a location alone sees down, at once, that make it unhealthy


class Seen(StrEnum):
    """What one location's detector holds of one check (values as ``CheckStatus``')."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, status: CheckStatus) -> Seen:
        """A location's detector status as a vote: degraded answers, flapping abstains."""
        if status in (CheckStatus.UP, CheckStatus.DEGRADED):
            return cls.UP
        return cls.DOWN if status is CheckStatus.DOWN else cls.UNKNOWN


@dataclass(frozen=True, slots=True)
class LocationVerdict:
    """One location's verdict on one check."""

    location: str
    seen: Seen
    since: float | None = None  # when this location's detector reached ``seen``
    first_failure_at: float | None = None  # DOWN: the first failed probe of its failing run
    reason: Reason | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CheckVerdict:
    """The check's state once the locations probing it are rolled up."""

    check_id: str
    state: Seen
    saw_failure: tuple[str, ...]  # counted locations that confirm it down, sorted
    first_failure_at: float | None  # the earliest among them
    reason: Reason | None  # of the location whose failure came first
    detail: str
    confirmed_at: float | None  # DOWN: when the majority was reached
    dissenting: tuple[str, ...]  # counted locations that see it down while it is up
    left_out: tuple[str, ...]  # locations not counted: their canary fails


def decide(
    check_id: str, verdicts: Iterable[LocationVerdict], canary_failing: Collection[str] = ()
) -> CheckVerdict:
    """Roll the verdicts of the locations probing ``check_id`` into one (majority rule)."""
    every = sorted(verdicts, key=lambda v: v.location)
    counted = [v for v in every if v.location not in canary_failing]
    downs = [v for v in counted if v.seen is Seen.DOWN]
    needed = len(counted) // 2 + 1
    if counted and len(downs) >= needed:
        state = Seen.DOWN
    elif any(v.seen is Seen.UP for v in counted):
        state = Seen.UP
    else:
        state = Seen.UNKNOWN
    down = state is Seen.DOWN
    first = min(downs, key=_started, default=None) if down else None
    return CheckVerdict(
        check_id=check_id,
        state=state,
        saw_failure=tuple(v.location for v in downs) if down else (),
        first_failure_at=_started(first) if first is not None else None,
        reason=first.reason if first is not None else None,
        detail=first.detail if first is not None else "",
        confirmed_at=_confirmed_at(downs, needed) if down else None,
        dissenting=tuple(v.location for v in downs) if state is Seen.UP else (),
        left_out=tuple(v.location for v in every if v.location in canary_failing),
    )


def _started(verdict: LocationVerdict) -> float:
    """When a location's failing run began (its verdict's time when it does not say)."""
    for at in (verdict.first_failure_at, verdict.since):
        if at is not None:
            return at
    return float("inf")


def _confirmed_at(downs: list[LocationVerdict], needed: int) -> float | None:
    """When the ``needed``-th location confirmed the check down, if all of them say when."""
    times = sorted(v.since for v in downs if v.since is not None)
    return times[needed - 1] if len(times) >= needed else None


@dataclass(frozen=True, slots=True)
class Unhealthy:
    """A location whose failures are its own, for ops."""

    location: str
    canary_failing: bool
    dissents: tuple[str, ...]  # checks it sees down that the others see up, sorted


def unhealthy(
    verdicts: Iterable[CheckVerdict],
    canary_failing: Collection[str] = (),
    dissent_at: int = DISSENT_AT,
) -> tuple[Unhealthy, ...]:
    """The unhealthy locations: a failing canary, or ``dissent_at`` lone failures at once."""
    dissents: dict[str, list[str]] = {}
    for verdict in verdicts:
        for location in verdict.dissenting:
            dissents.setdefault(location, []).append(verdict.check_id)
    flagged = {loc for loc, checks in dissents.items() if len(checks) >= dissent_at}
    return tuple(
        Unhealthy(loc, loc in canary_failing, tuple(sorted(dissents.get(loc, ()))))
        for loc in sorted(flagged | set(canary_failing))
    )
