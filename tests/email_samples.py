"""Sample template contexts for every email kind, as notices builds them: realistic values."""

from __future__ import annotations

from typing import Any

INCIDENT_KINDS = ("first", "update", "unstable", "resolved", "postmortem")
MAINTENANCE_KINDS = (
    "maintenance_planned",
    "maintenance_started",
    "maintenance_extended",
    "maintenance_ended",
    "maintenance_cancelled",
)
KINDS = INCIDENT_KINDS + MAINTENANCE_KINDS
NAMES = {
    "fr": ("Suivi de colis", "Étiquettes"),
    "en": ("Parcel tracking", "Shipping labels"),
}
WHEN = {
    "fr": ("22/11/2026 à 13:02 (Europe/Paris)", "22/11/2026 à 15:07 (Europe/Paris)"),
    "en": ("22 Nov 2026, 13:02 (Europe/Paris)", "22 Nov 2026, 15:07 (Europe/Paris)"),
}
NEXT_UPDATE = {"fr": "22/11/2026 à 14:00 (Europe/Paris)", "en": "22 Nov 2026, 14:00 (Europe/Paris)"}
POSTMORTEM = "Cause: a saturated load balancer.\nMeasures: capacity doubled.\nAlert added."


def incident(
    kind: str, language: str, ref: str, services: list[str], **over: Any
) -> dict[str, Any]:
    """One incident as notices builds it, in the state ``kind`` tells of."""
    start, end = WHEN[language]
    done = kind in ("resolved", "postmortem")
    item: dict[str, Any] = {
        "id": ref,
        "services": services,
        "status": {"update": "identified", "resolved": "resolved", "postmortem": "resolved"}.get(
            kind, "investigating"
        ),
        "first_failure": start,
        "recovered": end if done else "",
        "duration": "2 h 05 min" if done else "",
        "message": "",
        "postmortem": POSTMORTEM if kind == "postmortem" else "",
        "unstable": kind == "unstable",
        "overrun": False,
        "closed": False,
        "technical": [],
        "impact": "",
        "review": done,  # 2 h 05 min: longer than review_after
    }
    return item | over


def context(kind: str, language: str, *, digest: bool = False, **over: Any) -> dict[str, Any]:
    """A realistic context for ``kind``: one incident (two with ``digest``) or one maintenance."""
    first, second = NAMES[language]
    services = [first, second] if digest else [first]
    incidents: list[dict[str, Any]] = []
    maintenance = None
    if kind in MAINTENANCE_KINDS:
        start, end = WHEN[language]
        maintenance = {
            "id": "MNT-2026-014",
            "summary": "",
            "start": start,
            "end": end,
            "previous_end": start if kind == "maintenance_extended" else "",
            "duration": "2 h 05 min",
        }
    else:
        incidents = [incident(kind, language, "INC-20261122-0001", [first])]
        if digest:
            incidents.append(incident(kind, language, "INC-20261122-0002", [second]))
    ongoing = kind in ("first", "update", "unstable")
    return {
        "customer_name": "Transports Martin",
        "language": language,
        "incidents": incidents,
        "services": services,
        "next_update": NEXT_UPDATE[language] if ongoing else "",
        "status_url": "https://status.example.net/",
        "sender": "Colisa Operations",
        "unsubscribe_url": "https://status.example.net/unsubscribe/abc",
        "technical": False,
        "maintenance": maintenance,
    } | over
