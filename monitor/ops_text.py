"""What the ops channels hear: short technical English, at once, one message per event."""

from __future__ import annotations

import html
from collections.abc import Sequence

from monitor.config import Config, EmailChannel
from monitor.config_notices import OpsChannel
from monitor.incidents import ChangeKind, Incident, IncidentChange
from monitor.notices import Notice, NoticeKind, one_line
from monitor.timebounds import moment

_HEADLINES = {
    ChangeKind.OPENED: "DOWN",
    ChangeKind.JOINED: "ALSO DOWN",
    ChangeKind.UNSTABLE: "UNSTABLE",
    ChangeKind.RESOLVED: "RESOLVED",
}


def _utc(at: float) -> str:
    return moment(at).strftime("%Y-%m-%d %H:%M:%S UTC")


class OpsWriter:
    """Builds the notices of every configured ops channel (webhook or mailbox)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def incident(self, change: IncidentChange, now: float) -> list[Notice]:
        """Ops hear an incident open, grow, flap and end; customers' pace does not apply."""
        headline = _HEADLINES.get(change.kind)
        if headline is None or not self.config.notices.ops:
            return []
        incident = change.incident
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
                f"Its canary checks have all failed since {_utc(since)}.",
                "No incident is opened for anyone until they answer again.",
            ]
        else:
            subject = "[forewarn] forewarn is back online"
            lines = [subject, f"Its canary checks answer again since {_utc(since)}."]
        step = f"canary-{'offline' if offline else 'online'}-{int(since)}"
        return self._notices(f"{step}:ops", "canary", subject, lines, now)

    def _facts(self, change: IncidentChange, incident: Incident) -> list[str]:
        if change.kind is ChangeKind.RESOLVED:
            told = "customers were told" if incident.customers_told_at else "customers not told"
            end = incident.recovered_at or change.at
            minutes = (end - incident.first_failure_at) / 60
            return [
                f"Window: {_utc(incident.first_failure_at)} → {_utc(end)} ({minutes:.1f} min)",
                f"Incident {incident.id}; {told}.",
            ]
        facts = [
            f"Failing check: {incident.check_id or '?'} ({incident.reason or 'unknown'})",
            f"Detail: {one_line(incident.detail) or '-'}",
            f"First failure: {_utc(incident.first_failure_at)}",
            f"Incident {incident.id}",
        ]
        if incident.maintenance_id:
            facts.append(f"Still down after maintenance {incident.maintenance_id} ended.")
        return facts

    def _notices(
        self, seed: str, reference: str, subject: str, lines: list[str], now: float
    ) -> list[Notice]:
        text = "\n".join(lines) + "\n"
        notices = []
        for channel in self.config.notices.ops:
            email = isinstance(channel, EmailChannel)
            notices.append(
                Notice(
                    key=f"{seed}:{channel.name}",
                    incident_id=reference,
                    kind=NoticeKind.OPS,
                    channel="email" if email else "webhook",
                    recipient=channel.name,
                    address=channel.to if isinstance(channel, EmailChannel) else channel.url,
                    language="en",
                    subject=one_line(subject),
                    text=text,
                    html=f"<pre>{html.escape(text)}</pre>",
                    created_at=now,
                )
            )
        return notices


def delivery_alerts(
    ops: Sequence[OpsChannel], failing: str, reason: str, now: float
) -> list[Notice]:
    """One ops notice per ops channel not on the ``failing`` channel (it would fail alike)."""
    since = _utc(now)
    subject = f"[forewarn] {failing} delivery is failing: check the notices settings"
    text = (
        f"{subject}\nSince {since} every {failing} notice fails the same way: {reason}\n"
        "Notices stay queued and go out once the settings or the server are fixed.\n"
    )
    notices = []
    for channel in ops:
        kind, address = (
            ("email", channel.to) if isinstance(channel, EmailChannel) else ("webhook", channel.url)
        )
        if kind != failing:
            notices.append(
                Notice(
                    key=f"delivery-{failing}-{int(now)}:ops:{channel.name}",
                    incident_id="delivery",
                    kind=NoticeKind.OPS,
                    channel=kind,
                    recipient=channel.name,
                    address=address,
                    language="en",
                    subject=subject,
                    text=text,
                    html=f"<pre>{html.escape(text)}</pre>",
                    created_at=now,
                )
            )
    return notices
