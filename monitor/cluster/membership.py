"""Who is in the cluster: lease rows in, live members and once-per-episode events out.

Each instance renews its lease row every ``lease_period`` seconds. A member is live while
``now - renewed_at <= SILENT_AFTER * lease_period`` (two periods): one late or missed renewal (a
database hiccup, a long pause) does not reshuffle the checks, and a member that stops renewing
is silent one period after the renewal it missed. The others look at the leases every period,
so they see it silent, and report it, within two lease periods of that missed renewal.

Every time here should come from one clock, the database's (``now()`` in the statement that
renews or reads the leases): instances' own clocks may disagree by more than a period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

SILENT_AFTER = 2.0  # lease periods without a renewal after which a member is silent


@dataclass(frozen=True, slots=True)
class Lease:
    """One instance's lease row, as read from the shared database."""

    instance_id: str
    location: str
    renewed_at: float
    started_at: float  # when that instance's process started: a new value means a restart
    canary_ok: bool = True  # its own canary checks answer: its network is fine


def is_live(lease: Lease, now: float, lease_period: float) -> bool:
    """Whether ``lease`` was renewed recently enough for its instance to count as live."""
    return now - lease.renewed_at <= SILENT_AFTER * lease_period


def newest(leases: Iterable[Lease]) -> dict[str, Lease]:
    """The most recently renewed row of each instance, by instance id."""
    rows: dict[str, Lease] = {}
    for lease in leases:
        known = rows.get(lease.instance_id)
        if known is None or lease.renewed_at > known.renewed_at:
            rows[lease.instance_id] = lease
    return rows


def live_members(leases: Iterable[Lease], now: float, lease_period: float) -> tuple[Lease, ...]:
    """The live leases, newest row per instance, sorted by instance id."""
    rows = sorted(newest(leases).items())
    return tuple(lease for _, lease in rows if is_live(lease, now, lease_period))


def locations(members: Iterable[Lease]) -> tuple[str, ...]:
    """The distinct locations of ``members``, sorted."""
    return tuple(sorted({m.location for m in members}))


class Change(StrEnum):
    """What happened to one member since the previous look at the leases."""

    JOINED = "joined"  # a new instance renews its lease
    SILENT = "silent"  # a live member stopped renewing: ops hear of it once
    BACK = "back"  # a silent member renews again (restarted or not)
    RESTARTED = "restarted"  # a live member's process started again without going silent
    LEFT = "left"  # a live member's row was removed: it stopped cleanly


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """One change of one member, reported once per episode."""

    change: Change
    instance_id: str
    location: str
    at: float  # when it was seen
    renewed_at: float  # the member's last renewal then
    started_at: float
    last_live_at: float | None = None  # SILENT and BACK: the last renewal before the silence

    @property
    def key(self) -> str:
        """The same on every instance that sees this episode: lets ops notices be deduplicated."""
        episode = self.started_at if self.last_live_at is None else self.last_live_at
        return f"member:{self.change}:{self.instance_id}:{episode:.3f}"


@dataclass(frozen=True, slots=True)
class Seen:
    """What the watch remembers of one member."""

    lease: Lease
    live: bool


@dataclass(frozen=True, slots=True)
class Watch:
    """One instance's view of the others between two looks at the lease rows."""

    me: str  # this instance's id: its own lease is not reported
    lease_period: float
    members: Mapping[str, Seen] = field(default_factory=dict)
    primed: bool = False  # the first look only learns who is there (the others told ops)


def observe(
    watch: Watch, leases: Iterable[Lease], now: float
) -> tuple[Watch, tuple[MemberEvent, ...]]:
    """Fold one look at the lease rows into the watch; return the episodes it begins."""
    rows = {i: lease for i, lease in newest(leases).items() if i != watch.me}
    members: dict[str, Seen] = {}
    events: list[MemberEvent] = []
    for instance_id, lease in sorted(rows.items()):
        seen = Seen(lease, is_live(lease, now, watch.lease_period))
        members[instance_id] = seen
        before = watch.members.get(instance_id)
        change = _change(before, seen) if watch.primed else None
        if change is not None:
            events.append(_event(change, lease, now, before))
    for instance_id, before in sorted(watch.members.items()):
        if instance_id not in rows and before.live:
            events.append(_event(Change.LEFT, before.lease, now, None))
    return Watch(watch.me, watch.lease_period, members, primed=True), tuple(events)


def _change(before: Seen | None, now: Seen) -> Change | None:
    """What moved between two looks at one member, if anything worth an event."""
    if before is None:
        return Change.JOINED if now.live else None
    if before.live and not now.live:
        return Change.SILENT
    if not before.live and now.live:
        return Change.BACK
    restarted = now.lease.started_at != before.lease.started_at
    return Change.RESTARTED if now.live and restarted else None


def _event(change: Change, lease: Lease, now: float, before: Seen | None) -> MemberEvent:
    """The event of ``change`` for the member holding ``lease`` (``before``: the last look)."""
    last_live_at = {
        Change.SILENT: lease.renewed_at,
        Change.BACK: before.lease.renewed_at if before is not None else None,
    }.get(change)
    return MemberEvent(
        change=change,
        instance_id=lease.instance_id,
        location=lease.location,
        at=now,
        renewed_at=lease.renewed_at,
        started_at=lease.started_at,
        last_live_at=last_live_at,
    )
