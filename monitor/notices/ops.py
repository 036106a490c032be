"""What the ops channels hear: short technical English, at once, one message per event."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from monitor.config.load import Config
from monitor.config.notices import OpsChannel
from monitor.core.localtime import show
from monitor.core.notice import Notice, NoticeKind, one_line
from monitor.domain.incidents import ChangeKind, Incident, IncidentChange

_HEADLINES = {
    ChangeKind.OPENED: "DOWN",
    ChangeKind.JOINED: "ALSO DOWN",
    ChangeKind.UNSTABLE: "UNSTABLE",
    ChangeKind.RESOLVED: "RESOLVED",
}


class OpsWriter:
    """Builds the notices of every configured ops channel (webhook or mailbox)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def _when(self, at: float) -> str:
        """A time as operators read it everywhere: daemon.timezone, with the offset."""
        return show(at, self.config.zone())

    def incident(self, change: IncidentChange, now: float) -> list[Notice]:
        """Ops hear an incident open, grow, flap and end; customers' pace does not apply."""
        headline = _HEADLINES.get(change.kind)
        if headline is None or not self.config.notices.ops:
            return []
        incident = change.incident
        if change.kind is ChangeKind.OPENED and incident.never_up:
            headline = "NEVER SEEN UP"
        if change.kind is ChangeKind.OPENED and incident.manual:
            headline = "DOWN (opened by an operator)"
        services = change.services if change.kind is ChangeKind.JOINED else incident.covered
        names = ", ".join(self.config.service(s).display_name("en") for s in services)
        subject = f"[forewarn] {headline}: {names}"
        lines = [subject, *self._facts(change, incident)]
        step = change.kind.value + "".join(f"-{s}" for s in change.services)
        return self._notices(f"{incident.id}:ops-{step}", incident.id, subject, lines, now)

    def canary(self, offline: bool, since: float, now: float) -> list[Notice]:
        """forewarn's own connectivity failed or came back: no incident opens meanwhile."""
        if offline:
            subject = "[forewarn] forewarn itself is offline"
            lines = [
                subject,
                f"Its canary checks have all failed since {self._when(since)}.",
                "No incident is opened for anyone until they answer again.",
            ]
        else:
            subject = "[forewarn] forewarn is back online"
            lines = [subject, f"Its canary checks answer again since {self._when(since)}."]
        step = f"canary-{'offline' if offline else 'online'}-{int(since)}"
        return self._notices(f"{step}:ops", "canary", subject, lines, now)

    def unsubscribed(self, address: str, at: float) -> list[Notice]:
        """A customer unsubscribed: ops hear who, and how to undo it if asked to."""
        folded = address.strip().lower()
        owners = [c for c in self.config.customers if c.owns(folded)]
        who = ", ".join(f"{c.name} ({c.id})" for c in owners) or "an address of no customer"
        subject = f"[forewarn] Unsubscribed: {who}"
        lines = [
            subject,
            f"{address} gets no more notices since {self._when(at)}.",
            f"To undo it when they ask: forewarn customers suppressed lift {address}",
        ]
        # One a day and address: a second click the same day says nothing new.
        day = show(at, self.config.zone())[:10]
        seed = f"unsubscribed-{hashlib.sha256(folded.encode()).hexdigest()[:16]}-{day}:ops"
        return self._notices(seed, "unsubscribe", subject, lines, at)

    def _facts(self, change: IncidentChange, incident: Incident) -> list[str]:
        if change.kind is ChangeKind.RESOLVED:
            told = "customers were told" if incident.customers_told_at else "customers not told"
            end = incident.recovered_at or change.at
            minutes = (end - incident.first_failure_at) / 60
            return [
                f"Window: {self._when(incident.first_failure_at)} → {self._when(end)} "
                f"({minutes:.1f} min)",
                f"Incident {incident.id}; {told}.",
            ]
        if incident.manual:
            return [
                "Opened by an operator: no check found it; only an operator resolves it.",
                f"Customers told at once. Incident {incident.id}",
            ]
        facts = [
            f"Failing check: {incident.check_id or '?'} ({incident.reason or 'unknown'})",
            f"Detail: {one_line(incident.detail) or '-'}",
            f"First failure: {self._when(incident.first_failure_at)}",
            f"Incident {incident.id}",
        ]
        if incident.maintenance_id:
            facts.append(f"Still down after maintenance {incident.maintenance_id} ended.")
        if incident.never_up:
            facts.append(
                "Never seen up: it has failed since it was added (a wrong URL, a port not yet "
                "open?). Customers will not be told unless it answers once and fails again, "
                "or an operator posts an update on this incident."
            )
        return facts

    def _notices(
        self, seed: str, reference: str, subject: str, lines: list[str], now: float
    ) -> list[Notice]:
        text = "\n".join(lines) + "\n"
        return [
            ops_notice(channel, f"{seed}:{channel.name}", reference, one_line(subject), text, now)
            for channel in self.config.notices.ops
        ]


def delivery_alerts(
    ops: Sequence[OpsChannel], failing: str, reason: str, now: float, zone: ZoneInfo
) -> list[Notice]:
    """One ops notice per ops channel not on the ``failing`` channel (it would fail alike)."""
    since = show(now, zone)
    subject = f"[forewarn] {failing} delivery is failing: check the notices settings"
    text = (
        f"{subject}\nSince {since} every {failing} notice fails the same way: {reason}\n"
        "Notices stay queued and go out once the settings or the server are fixed.\n"
    )
    seed = f"delivery-{failing}-{int(now)}"
    return own_alerts(ops, seed, "delivery", subject, text, now, skip=failing)


def own_alerts(
    ops: Sequence[OpsChannel],
    seed: str,
    reference: str,
    subject: str,
    text: str,
    now: float,
    skip: str | None = None,
) -> list[Notice]:
    """One notice per ops channel (but those of kind ``skip``) about forewarn's own trouble."""
    return [
        ops_notice(channel, f"{seed}:ops:{channel.name}", reference, one_line(subject), text, now)
        for channel in ops
        if channel.type != skip
    ]


def ops_notice(
    channel: OpsChannel, key: str, reference: str, subject: str, text: str, now: float
) -> Notice:
    """The notice one ops channel gets: the same short English text on every channel type."""
    return Notice(
        key=key,
        incident_id=reference,
        kind=NoticeKind.OPS,
        channel=channel.type,
        recipient=channel.name,
        address=channel.address,
        language="en",
        subject=subject,
        text=text,
        html=f"<pre>{html.escape(text)}</pre>",
        created_at=now,
    )
