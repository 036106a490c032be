"""What ops hear about the cluster itself: an instance gone silent or back, a location unhealthy.

Customers hear nothing of these: a silent instance's checks are probed by the others, and an
unhealthy location's lone failures never make a check down. Every key is the same on every
instance, so that a new decider repeating a message it cannot know was sent adds no email.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from monitor.cluster.membership import Change, MemberEvent
from monitor.cluster.quorum import Unhealthy
from monitor.config.notices import OpsChannel
from monitor.core.localtime import show
from monitor.core.notice import Notice
from monitor.notices.ops import own_alerts

_TOLD = (Change.SILENT, Change.BACK)  # joins, restarts and clean exits are routine


def member_alerts(
    ops: Sequence[OpsChannel], events: Iterable[MemberEvent], now: float, zone: ZoneInfo
) -> list[Notice]:
    """One notice per ops channel for each instance that went silent or came back."""
    notices: list[Notice] = []
    for event in events:
        if event.change not in _TOLD:
            continue
        who = f"instance {event.instance_id} at {event.location}"
        if event.change is Change.SILENT:
            subject = f"[forewarn] {who} stopped renewing its lease"
            text = (
                f"{subject}\nLast renewal: {show(event.renewed_at, zone)}.\n"
                "The other instances probe its checks from now on; if it was deciding, one "
                "of them has taken over. Look at its host: forewarn there is dead or cut off "
                "from the database.\n"
            )
        else:
            subject = f"[forewarn] {who} is back"
            text = f"{subject}\nIt renews its lease again since {show(event.renewed_at, zone)}.\n"
        notices += own_alerts(ops, event.key, "cluster", subject, text, now)
    return notices


def location_alerts(
    ops: Sequence[OpsChannel],
    before: dict[str, Unhealthy],
    after: dict[str, Unhealthy],
    since: dict[str, float],
    now: float,
    zone: ZoneInfo,
) -> list[Notice]:
    """Ops hear when a location turns unhealthy (and why), and when it is healthy again."""
    notices: list[Notice] = []
    for location in sorted(after.keys() - before.keys()):
        found = after[location]
        why = (
            "its own canary checks fail"
            if found.canary_failing
            else f"it alone sees down {', '.join(found.dissents)}, which the other locations see up"
        )
        subject = f"[forewarn] location {location} is unhealthy"
        text = (
            f"{subject}: {why}.\nSince {show(since[location], zone)}. No incident opens from its "
            "failures alone and customers are not told; look at that location's network.\n"
        )
        seed = f"location-{location}-unhealthy-{int(since[location])}"
        notices += own_alerts(ops, seed, "cluster", subject, text, now)
    for location in sorted(before.keys() - after.keys()):
        subject = f"[forewarn] location {location} is healthy again"
        text = f"{subject}\nIts results agree with the other locations since {show(now, zone)}.\n"
        seed = f"location-{location}-healthy-{int(since.get(location, now))}"
        notices += own_alerts(ops, seed, "cluster", subject, text, now)
    return notices
