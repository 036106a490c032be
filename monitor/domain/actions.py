"""Operator actions on incidents (open, identify, update, resolve, postmortem) as pure steps."""

from __future__ import annotations

from dataclasses import replace

from monitor.core.words import Words
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentChange,
    IncidentStatus,
    Timing,
    incident_id,
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
    page_only: bool = False,
) -> IncidentChange:
    """The change an operator's message makes; customers who were told hear of it.

    ``review`` (resolve only) announces a review: the resolution promises one. ``failing``
    names the services that still fail: resolving then needs ``force``, and customers read
    that the incident was closed, not that the service works again. ``page_only`` (update
    only) puts the words on the status page and feed without emailing anyone.
    """
    if (review or force) and action is not OperatorAction.RESOLVE:
        raise ActionRefused("review and force only go with resolving the incident")
    if page_only:
        return _page_only(incident, action, message, now)
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


def _page_only(
    incident: Incident, action: OperatorAction, message: Words, now: float
) -> IncidentChange:
    """A timeline entry for the page and feed; no email, so no sequence or promise moves.

    The incident's ``message`` stays as it was: the next promised update repeats the latest
    words customers were emailed, never words the operator kept off email.
    """
    if action is not OperatorAction.UPDATE:
        raise ActionRefused("only an update can be for the status page only")
    if incident.status is IncidentStatus.RESOLVED:
        raise ActionRefused(f"incident {incident.id} is already resolved")
    return IncidentChange(ChangeKind.UPDATE, incident, now, said=message, page_only=True)


def open_by_hand(
    services: tuple[str, ...],
    message: Words,
    now: float,
    timing: Timing,
    since: float | None = None,
) -> list[IncidentChange]:
    """An incident an operator opens for an outage no probe found (reported by phone).

    Its customers hear at once, in the operator's words (no ``customer_delay``: a person
    confirmed it), then every ``update_every``. It is ``manual``: only an operator resolves
    it, and a covered service whose checks fail later is already in it. ``since`` dates the
    outage's start when the caller knows it (else it is dated from now).
    """
    if not services or len(set(services)) != len(services):
        raise ActionRefused("name each affected service once")
    if not message:
        raise ActionRefused("opening an incident needs a message for its customers")
    if since is not None and since > now:
        raise ActionRefused("since: the outage cannot start in the future")
    began = now if since is None else since
    opened = Incident(
        id=incident_id(services[0], now),
        service_id=services[0],
        status=IncidentStatus.INVESTIGATING,
        opened_at=now,
        first_failure_at=began,
        services=services,
        message=message,
        manual=True,
    )
    told = replace(
        opened,
        sequence=1,
        customers_told_at=now,
        next_update_at=now + timing.update_every,
        announced=services,
    )
    return [
        IncidentChange(ChangeKind.OPENED, opened, now),
        IncidentChange(ChangeKind.ANNOUNCED, told, now, said=message),
    ]
