"""Values tests build often (incidents, transitions, notices, notice settings), with defaults."""

from __future__ import annotations

import time
from typing import Any

from monitor.config.load import NoticesConfig
from monitor.core.notice import Notice, NoticeKind
from monitor.domain.detector import CheckStatus, Transition
from monitor.domain.incidents import Incident, IncidentStatus
from monitor.probes.base import Reason

NOW = 1_700_000_000.0
SENDER = "Support <support@example.net>"


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


def accented_notice(key: str = "inc-1:1:acme", **fields: Any) -> Notice:
    """A rendered French first notice for ACME, with accents and punctuation in every part."""
    values: dict[str, Any] = {
        "subject": "Suivi de colis : incident en cours (équipe prévenue)",
        "text": "Bonjour,\nLe suivi est indisponible ; prochain point à 14 h 32.",
        "html": "<p>Bonjour, le suivi est indisponible ; prochain point à 14 h 32.</p>",
    }
    return make_notice(key, **{**values, **fields})


def addressed_notice(recipient: str, sequence: int = 1, **fields: Any) -> Notice:
    """An email notice for ``recipient`` at ``recipient``@x.example."""
    values: dict[str, Any] = {
        "recipient": recipient,
        "address": f"{recipient}@x.example",
        "language": "en",
        "subject": "Parcel tracking is down",
        "text": "Hello,",
        "html": "<p>Hello,</p>",
        "created_at": time.time(),
    }
    return make_notice(f"inc-1:{sequence}:{recipient}", **{**values, **fields})


def notices_config(port: int = 25, transport: str = "smtp", **smtp: Any) -> NoticesConfig:
    """Notice settings pointing at a local SMTP server with a short timeout."""
    return NoticesConfig.model_validate(
        {
            "from": SENDER,
            "transport": transport,
            "smtp": {"host": "127.0.0.1", "port": port, "timeout": "2s", **smtp},
        }
    )


def make_incident(incident_id: str = "inc-1", opened_at: float = NOW, **fields: Any) -> Incident:
    """A tracking incident under investigation, failing since 10 s before it opened."""
    values: dict[str, Any] = {
        "id": incident_id,
        "service_id": "tracking",
        "status": IncidentStatus.INVESTIGATING,
        "opened_at": opened_at,
        "first_failure_at": opened_at - 10,
    }
    return Incident(**{**values, **fields})


def make_transition(check_id: str = "tracking-ws", at: float = NOW) -> Transition:
    """A check confirmed down (HTTP 503), failing since 10 s before."""
    return Transition(
        check_id, CheckStatus.UP, CheckStatus.DOWN, at, Reason.HTTP_STATUS, "HTTP 503", at - 10
    )
