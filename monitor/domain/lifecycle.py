"""Service states to incidents: open, group by dependency, recover, relapse, resolve, cadence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentChange,
    IncidentStatus,
    Rules,
    ServiceView,
    Timing,
    incident_id,
    resolved,
)

_ANSWERING = (CheckStatus.UP, CheckStatus.DEGRADED)
RESOLUTION_MERGE = 60.0  # an update due this close before the resolution is left to it


def apply(
    open_incidents: Mapping[str, Incident],
    views: Mapping[str, ServiceView],
    now: float,
    rules: Rules,
    *,
    canary_ok_at: float | None = None,
) -> list[IncidentChange]:
    """Advance every incident to ``now``; ``open_incidents`` is keyed by incident id.

    With a canary, a failure only opens an incident once the canary has succeeded after
    that failure began (``canary_ok_at``): until then it may be our own network.
    """
    incidents = dict(open_incidents)
    changes = _open_and_join(incidents, views, now, rules, canary_ok_at)
    for incident in list(incidents.values()):
        if incident.resolved_at is None and incident.manual:
            # Opened by an operator for an outage no probe found: green checks prove nothing
            # about it, so only an operator resolves it; it keeps the promised cadence.
            changes.extend(_cadence(incident, now, rules.timing(incident.service_id)))
        elif incident.resolved_at is None:
            view = _combined(incident, views)
            changes.extend(_advance(incident, view, now, rules.timing(incident.service_id)))
    for change in changes:
        incidents[change.incident.id] = change.incident
    changes.extend(_announce(list(incidents.values()), now, rules))
    return changes


def _joined(incident: Incident, service_id: str, view: ServiceView) -> Incident:
    """``incident`` grown by a dependant that fails while it is open."""
    told = incident.customers_told_at is not None
    return replace(
        incident,
        services=(*incident.covered, service_id),
        announced=(*incident.announced, service_id) if told else incident.announced,
        never_up=incident.never_up and view.never_up,
    )


def _opened(
    service_id: str, view: ServiceView, first: float, now: float, absorbed: list[Incident]
) -> Incident:
    """A new incident for a failing service, covering its dependants' untold incidents too."""
    return Incident(
        id=incident_id(service_id, first),
        service_id=service_id,
        status=IncidentStatus.INVESTIGATING,
        # Absorbing keeps the absorbed incident's clock: its customer_delay is not restarted.
        opened_at=min([now, *(i.opened_at for i in absorbed)]),
        first_failure_at=min([first, *(i.first_failure_at for i in absorbed)]),
        services=(service_id, *(s for i in absorbed for s in i.covered)),
        reason=view.reason,
        detail=view.detail,
        check_id=view.check_id,
        unstable=view.flapping,
        maintenance_id=view.maintenance_id,
        never_up=view.never_up and all(i.never_up for i in absorbed),
    )


def _open_and_join(
    incidents: dict[str, Incident],
    views: Mapping[str, ServiceView],
    now: float,
    rules: Rules,
    canary_ok_at: float | None,
) -> list[IncidentChange]:
    """Open incidents for newly failing services; dependants join their dependency's."""
    changes: list[IncidentChange] = []
    covering = {s: i.id for i in incidents.values() if i.resolved_at is None for s in i.covered}
    # Dependencies first, so a dependant failing in the same tick finds their incident open.
    for service_id in sorted(views, key=lambda s: (len(rules.depends_on.get(s, ())), s)):
        view = views[service_id]
        failing = view.status is CheckStatus.DOWN or view.flapping
        if service_id in covering or not failing:
            continue
        ancestors = sorted(rules.depends_on.get(service_id, ()))
        host = next((covering[d] for d in ancestors if d in covering), None)
        if host is not None:
            joined = _joined(incidents[host], service_id, view)
            incidents[host] = joined
            covering[service_id] = host
            changes.append(IncidentChange(ChangeKind.JOINED, joined, now, (service_id,)))
            continue
        # Flapping without being down has no failing run: it is dated from when it was seen.
        first = view.first_failure_at if view.first_failure_at is not None else now
        if canary_ok_at is not None and canary_ok_at < first:
            continue  # is it us or them? wait for the canary to answer after this failure
        absorbed = [
            i
            for i in incidents.values()
            if i.resolved_at is None
            and i.customers_told_at is None
            and service_id in rules.depends_on.get(i.service_id, ())
        ]
        opened = _opened(service_id, view, first, now, absorbed)
        for old in absorbed:
            merged = replace(
                old, status=IncidentStatus.RESOLVED, resolved_at=now, next_update_at=None
            )
            incidents[old.id] = merged
            changes.append(IncidentChange(ChangeKind.MERGED, merged, now))
        incidents[opened.id] = opened
        covering.update(dict.fromkeys(opened.covered, opened.id))
        changes.append(IncidentChange(ChangeKind.OPENED, opened, now))
    return changes


def _combined(incident: Incident, views: Mapping[str, ServiceView]) -> ServiceView:
    """One view of every service an incident covers: down if any is, answering if all are."""
    covered = [views[s] for s in incident.covered if s in views]
    flapping = any(v.flapping for v in covered)
    down = [v for v in covered if v.status is CheckStatus.DOWN]
    if down:
        return replace(down[0], service_id=incident.service_id, flapping=flapping)
    if covered and all(v.status in _ANSWERING for v in covered):
        latest = max(covered, key=lambda v: v.since)
        return ServiceView(incident.service_id, latest.status, latest.since, flapping=flapping)
    since = max((v.since for v in covered), default=incident.opened_at)
    return ServiceView(incident.service_id, CheckStatus.UNKNOWN, since, flapping=flapping)


def _advance(
    incident: Incident, view: ServiceView, now: float, timing: Timing
) -> list[IncidentChange]:
    """The changes one open incident goes through at ``now``, in order."""
    told = incident.customers_told_at is not None
    if view.flapping and not incident.unstable:
        unstable = replace(incident, unstable=True, status=_active(incident), recovered_at=None)
        if told:  # one notice, and the cadence starts again from it
            unstable = replace(
                unstable, sequence=unstable.sequence + 1, next_update_at=now + timing.update_every
            )
        return [IncidentChange(ChangeKind.UNSTABLE, unstable, now)]
    failing = view.status is CheckStatus.DOWN or view.flapping
    if failing and incident.status is IncidentStatus.MONITORING:
        incident = replace(
            incident,
            status=IncidentStatus.INVESTIGATING,
            recovered_at=None,
            reason=view.reason,
            detail=view.detail,
            check_id=view.check_id or incident.check_id,
        )
        return [
            IncidentChange(ChangeKind.RELAPSED, incident, now),
            *_cadence(incident, now, timing),
        ]
    answering = view.status in _ANSWERING and not view.flapping
    if answering and incident.status is not IncidentStatus.MONITORING:
        # Out of a flapping spell the recovery counts from when it settled, not its last up.
        recovered_at = now if incident.unstable else view.since
        incident = replace(incident, status=IncidentStatus.MONITORING, recovered_at=recovered_at)
        if not told:  # recovered before customers were told: close it quietly
            return [IncidentChange(ChangeKind.RESOLVED, resolved(incident, now), now)]
        return [
            IncidentChange(ChangeKind.RECOVERING, incident, now),
            *_cadence(incident, now, timing),
        ]
    return _cadence(incident, now, timing)


def _active(incident: Incident) -> IncidentStatus:
    """The status an incident returns to when it is no longer recovering."""
    if incident.status is IncidentStatus.MONITORING:
        return IncidentStatus.INVESTIGATING
    return incident.status


def _cadence(incident: Incident, now: float, timing: Timing) -> list[IncidentChange]:
    """Resolution once stable for ``stable_for``, else the promised update when it is due.

    An update that falls due while the service is under watch and its resolution is at most
    ``RESOLUTION_MERGE`` away is left to the resolution: two emails within a minute, the
    second making the first pointless, help no one. A relapse sends it at once.
    """
    resolves_at = None
    if incident.status is IncidentStatus.MONITORING and incident.recovered_at is not None:
        resolves_at = incident.recovered_at + timing.stable_for
    if resolves_at is not None and now >= resolves_at:
        return [IncidentChange(ChangeKind.RESOLVED, resolved(incident, now), now)]
    if incident.customers_told_at is None or incident.next_update_at is None:
        return []
    if now < incident.next_update_at:
        return []
    if resolves_at is not None and resolves_at - now <= RESOLUTION_MERGE:
        return []
    updated = replace(
        incident, sequence=incident.sequence + 1, next_update_at=now + timing.update_every
    )
    return [IncidentChange(ChangeKind.UPDATE, updated, now)]


def due_at(incident: Incident, rules: Rules) -> float:
    """When customers may first hear of ``incident``: once it has lasted its customer_delay.

    Never before it is confirmed (opened). A maintenance overrun is due at once: its
    customers were expecting the service back.
    """
    if incident.maintenance_id:
        return incident.opened_at
    delay = rules.timing(incident.service_id).customer_delay
    return max(incident.opened_at, incident.first_failure_at + delay)


def _announce(incidents: list[Incident], now: float, rules: Rules) -> list[IncidentChange]:
    """First notices that are due; those going out together reach each customer as one email.

    Each incident waits its own ``customer_delay``, never less. A ``digest_window`` (none by
    default) is added to it, like Alertmanager's ``group_wait``: when an incident's wait is
    over, every other incident of the same customers that is past its own delay goes along,
    so a release breaking several services makes one email. An incident whose failing checks
    never answered tells ops only.
    """
    pending = [
        i
        for i in incidents
        if i.resolved_at is None
        and i.customers_told_at is None
        and i.status is not IncidentStatus.MONITORING
        and not i.never_up
    ]
    due = {i.id: due_at(i, rules) for i in pending}

    def waited(incident: Incident) -> bool:
        wait = 0.0 if incident.maintenance_id else rules.digest_window
        return now >= due[incident.id] + wait

    leaders = [i for i in pending if waited(i)]
    if not leaders:
        return []
    readers = frozenset().union(*(rules.readers(i) for i in leaders))
    ready = [
        i
        for i in pending
        if i in leaders or (now >= due[i.id] and not readers.isdisjoint(rules.readers(i)))
    ]
    return [
        IncidentChange(
            ChangeKind.ANNOUNCED,
            replace(
                i,
                sequence=i.sequence + 1,
                customers_told_at=now,
                next_update_at=now + rules.timing(i.service_id).update_every,
                announced=i.covered,
            ),
            now,
        )
        for i in sorted(ready, key=lambda i: (i.opened_at, i.id))
    ]
