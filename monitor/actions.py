"""Operator actions on an incident (identify, update, resolve, postmortem) as pure steps."""

from __future__ import annotations

from dataclasses import replace

from monitor.incidents import ChangeKind, Incident, IncidentChange, IncidentStatus, Timing, resolved
from monitor.operations import OperatorAction


class ActionRefused(Exception):
    """The action makes no sense for the incident as it stands (the API answers 409)."""


def act(
    incident: Incident, action: OperatorAction, message: str, now: float, timing: Timing
) -> IncidentChange:
    """The change an operator's message makes; customers who were told hear of it."""
    closed = incident.status is IncidentStatus.RESOLVED
    if action is OperatorAction.POSTMORTEM:
        if not closed:
            raise ActionRefused("resolve the incident before publishing its postmortem")
        told = incident.customers_told_at is not None
        published = replace(
            incident, postmortem=message, sequence=incident.sequence + (1 if told else 0)
        )
        return IncidentChange(ChangeKind.POSTMORTEM, published, now)
    if closed:
        raise ActionRefused(f"incident {incident.id} is already resolved")
    incident = replace(incident, message=message)
    if action is OperatorAction.RESOLVE:
        return IncidentChange(ChangeKind.RESOLVED, resolved(incident, now), now)
    if action is OperatorAction.IDENTIFY and incident.status is not IncidentStatus.MONITORING:
        incident = replace(incident, status=IncidentStatus.IDENTIFIED)
    # An operator's words restart the promised cadence from now.
    incident = replace(
        incident, sequence=incident.sequence + 1, next_update_at=now + timing.update_every
    )
    if incident.customers_told_at is None:
        # Customers have not heard of it yet (customer_delay): this is their first notice.
        first = replace(incident, customers_told_at=now, announced=incident.covered)
        return IncidentChange(ChangeKind.ANNOUNCED, first, now)
    kind = ChangeKind.IDENTIFIED if action is OperatorAction.IDENTIFY else ChangeKind.UPDATE
    return IncidentChange(kind, incident, now)
