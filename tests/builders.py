"""Values tests build often: a rendered notice with sensible defaults."""

from __future__ import annotations

from typing import Any

from monitor.core.notice import Notice, NoticeKind

NOW = 1_700_000_000.0


def make_notice(key: str = "inc-1:1:acme", created_at: float = NOW, **fields: Any) -> Notice:
    """A rendered French first notice for ACME; ``fields`` override any value."""
    values: dict[str, Any] = {
        "key": key,
        "incident_id": "inc-1",
        "kind": NoticeKind.FIRST,
        "channel": "email",
        "recipient": "acme",
        "address": "ops@acme.example",
        "language": "fr",
        "subject": "Suivi de colis indisponible",
        "text": "Bonjour,",
        "html": "<p>Bonjour,</p>",
        "created_at": created_at,
    }
    return Notice(**{**values, **fields})
