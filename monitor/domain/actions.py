"""Operator actions on an incident (identify, update, resolve, postmortem) as pure steps."""

from __future__ import annotations

from dataclasses import replace

from monitor.core.words import Words
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentChange,
    IncidentStatus,
    Timing,
    resolved,
)
from monitor.domain.operations import OperatorAction


class ActionRefused(Exception):
    """The action makes no sense for the incident as it stands (the API answers 409)."""


def act(
    incident: Incident,
    action: OperatorAction,
    message: Words,
    now: float,
    timing: Timing,
    review: bool = False,
    *,
    failing: tuple[str, ...] = (),
    force: bool = False,
) -> IncidentChange:
    """The change an operator's message makes; customers who were told hear of it.

    ``review`` (resolve only) announces a review: the resolution promises one. ``failing``
    names the services that still fail: resolving then needs ``force``, and customers read
    that the incident was closed, not that the service works again.
    """
    if (review or force) and action is not OperatorAction.RESOLVE:
        raise ActionRefused("review and force only go with resolving the incident")
    closed = incident.status is IncidentStatus.RESOLVED
    if action is OperatorAction.POSTMORTEM:
        if not closed:
            raise ActionRefused("resolve the incident before publishing its postmortem")
        told = incident.customers_told_at is not None
        published = replace(
            incident, postmortem=message, sequence=incident.sequence + (1 if told else 0)
        )
        return IncidentChange(ChangeKind.POSTMORTEM, published, now, said=message)
    if closed:
        raise ActionRefused(f"incident {incident.id} is already resolved")
    incident = replace(incident, message=message)
    if action is OperatorAction.RESOLVE:
        if failing and not force:
            raise ActionRefused(
                f"{', '.join(failing)} still failing: resolving would tell customers it works "
                "again; force it to close the incident anyway (they will read that it was "
                "closed while still failing)"
            )
        finished = resolved(incident, now, recovered=not failing)
        return IncidentChange(ChangeKind.RESOLVED, finished, now, said=message, review=review)
    if action is OperatorAction.IDENTIFY and incident.status is not IncidentStatus.MONITORING:
        incident = replace(incident, status=IncidentStatus.IDENTIFIED)
    # An operator's words restart the promised cadence from now.
    incident = replace(
        incident, sequence=incident.sequence + 1, next_update_at=now + timing.update_every
    )
    if incident.customers_told_at is None:
        # Customers have not heard of it yet (customer_delay): this is their first notice.
        first = replace(incident, customers_told_at=now, announced=incident.covered)
        return IncidentChange(ChangeKind.ANNOUNCED, first, now, said=message)
    kind = ChangeKind.IDENTIFIED if action is OperatorAction.IDENTIFY else ChangeKind.UPDATE
    return IncidentChange(kind, incident, now, said=message)
