"""What to say to whom and when: incident changes become rendered notices."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from monitor.config import Config, Customer, Service
from monitor.incidents import ChangeKind, Incident, IncidentChange
from monitor.render import Renderer, format_duration, format_time


class NoticeKind(StrEnum):
    """The kinds of message forewarn sends."""

    FIRST = "first"
    UPDATE = "update"
    UNSTABLE = "unstable"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"
    MAINTENANCE_PLANNED = "maintenance_planned"
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_EXTENDED = "maintenance_extended"
    MAINTENANCE_ENDED = "maintenance_ended"
    MAINTENANCE_CANCELLED = "maintenance_cancelled"
    OPS = "ops"
    TEST = "test"


CUSTOMER_KINDS = frozenset(NoticeKind) - {NoticeKind.OPS, NoticeKind.TEST}
"""Kinds with a customer template ``<language>/<kind>.subject|.txt|.html``."""

TEMPLATE_VARIABLES = frozenset(
    {
        "customer_name",
        "language",
        "incidents",
        "services",
        "next_update",
        "status_url",
        "sender",
        "unsubscribe_url",
        "technical",
        "maintenance",
    }
)
"""The names a customer template may use; ``check-config`` rejects any other."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One fully rendered message for one recipient on one channel: an outbox row."""

    key: str  # "incident:sequence:recipient", the idempotency key and the Message-ID's seed
    incident_id: str
    kind: NoticeKind
    channel: str  # a NOTIFIERS key: "email" or "webhook"
    recipient: str  # customer id, or ops channel name
    address: str  # email address or webhook URL
    language: str
    subject: str
    text: str
    html: str
    created_at: float
    unsubscribe_url: str = ""  # RFC 8058 one-click link; empty for ops channels


_CUSTOMER_KINDS = {
    ChangeKind.ANNOUNCED: NoticeKind.FIRST,
    ChangeKind.UPDATE: NoticeKind.UPDATE,
    ChangeKind.RESOLVED: NoticeKind.RESOLVED,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def one_line(text: str) -> str:
    """Collapse control characters and line breaks so a value can never start a new header."""
    return _CONTROL.sub(" ", text).strip()


def notice_key(incident_id: str, sequence: int | str, recipient: str) -> str:
    """The idempotency key ``incident:sequence:recipient``, reused as the Message-ID seed."""
    return f"{incident_id}:{sequence}:{recipient}"


class NoticePlanner:
    """Turns incident changes into rendered notices, one per affected customer."""

    def __init__(self, config: Config, renderer: Renderer) -> None:
        self.config = config
        self.renderer = renderer

    def plan(
        self, change: IncidentChange, audience: Sequence[Customer], now: float
    ) -> list[Notice]:
        """The notices ``change`` calls for, for each customer of ``audience``."""
        kind = _CUSTOMER_KINDS.get(change.kind)
        if kind is None:
            return []
        if kind is NoticeKind.RESOLVED and change.incident.customers_told_at is None:
            return []  # customers never heard of it: a resolution would only confuse them
        incident = change.incident
        service = self.config.service(incident.service_id)
        notices = []
        for customer in audience:
            language = customer.language or self.config.notices.default_language
            context = self._context(incident, service, customer, language)
            subject, text, html = self.renderer.render(kind, language, context)
            notices.append(
                Notice(
                    key=notice_key(incident.id, incident.sequence, customer.id),
                    incident_id=incident.id,
                    kind=kind,
                    channel="email",
                    recipient=customer.id,
                    address=customer.email,
                    language=language,
                    subject=one_line(subject),
                    text=text,
                    html=html,
                    created_at=now,
                )
            )
        return notices

    def _context(
        self, incident: Incident, service: Service, customer: Customer, language: str
    ) -> dict[str, object]:
        zone = self.config.zone(customer)
        when = partial(format_time, zone=zone, language=language)
        recovered = incident.recovered_at
        return {
            "customer_name": one_line(customer.name),
            "service": service.display_name(language),
            "services": [service.display_name(language)],
            "incident_id": incident.id,
            "first_failure": when(incident.first_failure_at),
            "recovered": when(recovered) if recovered is not None else "",
            "duration": format_duration(recovered - incident.first_failure_at, language)
            if recovered is not None
            else "",
            "next_update": when(incident.next_update_at) if incident.next_update_at else "",
            "status_url": f"{self.config.daemon.public_url}/",
            "sender": self.config.notices.from_.split("<")[0].strip() or "forewarn",
        }
