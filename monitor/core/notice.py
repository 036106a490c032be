"""Notices: the messages forewarn sends, as outbox values, and their idempotency keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def one_line(text: str) -> str:
    """Collapse control characters and line breaks so a value can never start a new header."""
    return _CONTROL.sub(" ", text).strip()


def notice_key(incident_id: str, sequence: int | str, recipient: str) -> str:
    """The idempotency key ``incident:sequence:recipient``, reused as the Message-ID seed."""
    return f"{incident_id}:{sequence}:{recipient}"
