"""JSON shapes of incidents, timeline entries and maintenance windows, for every API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

from monitor.core.timebounds import clamp, moment
from monitor.domain.incidents import Incident, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress

# What anyone may see of an incident; the operator view shows every field.
PUBLIC_INCIDENT_FIELDS = (
    "id", "service_id", "services", "status", "opened_at", "first_failure_at",
    "next_update_at", "recovered_at", "resolved_at", "message", "postmortem",
)  # fmt: skip


def iso(timestamp: float) -> str:
    """A Unix time as ISO 8601 UTC to the second: ``2026-11-22T12:00:00Z``."""
    return moment(int(clamp(timestamp))).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: float) -> str:
    """Seconds as checks.yaml writes them: ``24h``, ``90m``, ``2d``, ``0s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        # Days from two on: a day's notice reads "24h", as people write it in checks.yaml.
        if seconds and seconds % size == 0 and (unit != "d" or seconds >= 2 * size):
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms" if seconds else "0s"


def _plain(key: str, value: Any) -> Any:
    """A field value as JSON: times as ISO strings, enums as values, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if key.endswith("_at") and isinstance(value, int | float) and not isinstance(value, bool):
        return iso(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain("", v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain("", v) for v in value]
    return str(value)  # a field added later that JSON cannot carry as is


def incident_json(incident: Incident, *, public: bool = False) -> dict[str, Any]:
    """An incident as JSON; ``public`` keeps only the fields customers may see."""
    fields = dataclasses.asdict(incident)
    # A string when one text is for every language (as posted), else {language: text}.
    fields.update(message=incident.message.to_json(), postmortem=incident.postmortem.to_json())
    if public:
        fields = {k: v for k, v in fields.items() if k in PUBLIC_INCIDENT_FIELDS}
    shaped = {k: _plain(k, v) for k, v in fields.items()}
    if not shaped.get("services"):  # none listed: the incident is about its root alone
        shaped["services"] = [incident.service_id]
    return shaped


def update_json(update: IncidentUpdate) -> dict[str, Any]:
    """One timeline entry as JSON."""
    return {"at": iso(update.at), "status": update.status, "kind": update.kind,
            "message": update.message.to_json()}  # fmt: skip


def window_state(window: Window, progress: WindowProgress) -> str:
    """Where a window stands, as customers have been told."""
    if window.cancelled or progress.cancelled_at is not None:
        return "cancelled"
    if progress.ended_at is not None:
        return "ended"
    if progress.started_at is not None:
        return "in_progress"
    return "announced" if progress.announced_at is not None else "scheduled"


def window_json(window: Window, progress: WindowProgress | None = None) -> dict[str, Any]:
    """A maintenance window and what customers have heard of it, as JSON."""
    told = progress or WindowProgress(window.id)
    shaped: dict[str, Any] = {
        "id": window.id,
        "services": list(window.services),
        "start": iso(window.start),
        "end": iso(window.end),
        "announce_before": duration_text(window.announce_before),
        "summary": dict(window.summary),
        "state": window_state(window, told),
    }
    for key in ("announced_at", "started_at", "ended_at", "cancelled_at"):
        value = getattr(told, key)
        shaped[key] = None if value is None else iso(value)
    return shaped


# Request plumbing.
