"""Service states to incident lifecycle: open, monitor, relapse, resolve, keep the cadence."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from monitor.detector import CheckStatus


class IncidentStatus(StrEnum):
    """Where an incident stands, as customers read it."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Incident:
    """One outage of one service, from first failed probe to resolution."""

    id: str
    service_id: str
    status: IncidentStatus
    opened_at: float
    first_failure_at: float
    sequence: int = 0  # customer-facing messages sent so far; part of each notice's key
    customers_told_at: float | None = None
    next_update_at: float | None = None
    recovered_at: float | None = None
    resolved_at: float | None = None
    reason: str = ""  # Reason value of the failure that opened it, for ops and technical readers
    detail: str = ""


class ChangeKind(StrEnum):
    """What happened to an incident; each kind may produce notices."""

    OPENED = "opened"  # confirmed down: the incident exists, ops may hear of it
    ANNOUNCED = "announced"  # still down after customer_delay: customers get the first notice
    UPDATE = "update"  # the promised cadence is due: customers get an update
    RECOVERING = "recovering"  # the service answers again: watch it for stable_for
    RELAPSED = "relapsed"  # failed again while monitoring: same incident, no new first notice
    RESOLVED = "resolved"  # stable for stable_for (or recovered before customers were told)


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One step in an incident's life, with the incident as it is after the step."""

    kind: ChangeKind
    incident: Incident
    at: float


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A service's rolled-up state, as the incident logic needs it."""

    service_id: str
    status: CheckStatus
    since: float  # when the service entered this status
    first_failure_at: float | None = None
    reason: str = ""
    detail: str = ""
    check_id: str = ""  # the failing check, for ops and technical readers
    flapping: bool = False  # one of its checks changes state too often
    maintenance_id: str = ""  # still down when this maintenance window ended: an overrun


@dataclass(frozen=True, slots=True)
class Timing:
    """How patient forewarn is with customers for one service."""

    customer_delay: float
    update_every: float
    stable_for: float


_ANSWERING = (CheckStatus.UP, CheckStatus.DEGRADED)


def incident_id(service_id: str, first_failure_at: float) -> str:
    """A readable, stable id: the service and the UTC minute of the first failure."""
    stamp = datetime.fromtimestamp(first_failure_at, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{service_id}-{stamp}"


def apply(
    open_incidents: Mapping[str, Incident],
    services: Mapping[str, ServiceView],
    now: float,
    timing: Callable[[str], Timing],
) -> list[IncidentChange]:
    """Advance every service's incident to ``now``; ``open_incidents`` is keyed by service."""
    changes: list[IncidentChange] = []
    for service_id, view in services.items():
        incident = open_incidents.get(service_id)
        changes.extend(_advance(incident, view, now, timing(service_id)))
    return changes


def _advance(
    incident: Incident | None, view: ServiceView, now: float, timing: Timing
) -> list[IncidentChange]:
    """The changes one service's incident goes through at ``now``, in order."""
    down = view.status is CheckStatus.DOWN
    if incident is None:
        if not down:
            return []
        incident = Incident(
            id=incident_id(view.service_id, view.first_failure_at or view.since),
            service_id=view.service_id,
            status=IncidentStatus.INVESTIGATING,
            opened_at=now,
            first_failure_at=view.first_failure_at or view.since,
            reason=view.reason,
            detail=view.detail,
        )
        opened = IncidentChange(ChangeKind.OPENED, incident, now)
        return [opened, *_customers(incident, now, timing)]
    if down and incident.status is IncidentStatus.MONITORING:
        incident = replace(
            incident,
            status=IncidentStatus.INVESTIGATING,
            recovered_at=None,
            reason=view.reason,
            detail=view.detail,
        )
        return [
            IncidentChange(ChangeKind.RELAPSED, incident, now),
            *_customers(incident, now, timing),
        ]
    if view.status in _ANSWERING and incident.status is not IncidentStatus.MONITORING:
        incident = replace(incident, status=IncidentStatus.MONITORING, recovered_at=view.since)
        if incident.customers_told_at is None:
            # Recovered before customers were told: nothing to tell them, close it quietly.
            return [IncidentChange(ChangeKind.RESOLVED, _resolved(incident, now, told=False), now)]
        return [
            IncidentChange(ChangeKind.RECOVERING, incident, now),
            *_customers(incident, now, timing),
        ]
    return _customers(incident, now, timing)


def _customers(incident: Incident, now: float, timing: Timing) -> list[IncidentChange]:
    """The customer-facing steps that are due: first notice, cadence update, resolution."""
    recovered_at = incident.recovered_at
    stable = recovered_at is not None and now >= recovered_at + timing.stable_for
    if incident.status is IncidentStatus.MONITORING and stable:
        told = incident.customers_told_at is not None
        return [IncidentChange(ChangeKind.RESOLVED, _resolved(incident, now, told), now)]
    if incident.customers_told_at is None:
        if incident.status is IncidentStatus.MONITORING:
            return []
        if now < incident.opened_at + timing.customer_delay:
            return []
        announced = replace(
            incident,
            sequence=incident.sequence + 1,
            customers_told_at=now,
            next_update_at=now + timing.update_every,
        )
        return [IncidentChange(ChangeKind.ANNOUNCED, announced, now)]
    if incident.next_update_at is not None and now >= incident.next_update_at:
        updated = replace(
            incident, sequence=incident.sequence + 1, next_update_at=now + timing.update_every
        )
        return [IncidentChange(ChangeKind.UPDATE, updated, now)]
    return []


def _resolved(incident: Incident, now: float, told: bool) -> Incident:
    return replace(
        incident,
        status=IncidentStatus.RESOLVED,
        resolved_at=now,
        next_update_at=None,
        sequence=incident.sequence + (1 if told else 0),
    )
