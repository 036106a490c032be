"""Incidents as values: what an outage is, what can happen to it, and what it is judged from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from monitor.core.words import NOTHING, Words
from monitor.domain.detector import CheckStatus


class IncidentStatus(StrEnum):
    """Where an incident stands, as customers read it."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Incident:
    """One outage, from first failed probe to resolution, of a service and its dependants."""

    id: str
    service_id: str  # the root: the service that failed first, or the dependency
    status: IncidentStatus
    opened_at: float
    first_failure_at: float
    sequence: int = 0  # customer-facing messages sent so far; part of each notice's key
    customers_told_at: float | None = None
    next_update_at: float | None = None
    recovered_at: float | None = None
    resolved_at: float | None = None
    reason: str = ""  # Reason value of the failure, for ops and technical readers
    detail: str = ""
    services: tuple[str, ...] = ()  # every service it covers, root first
    announced: tuple[str, ...] = ()  # services whose customers have heard of it
    check_id: str = ""
    unstable: bool = False  # flapping: intermittent failures rather than a clean outage
    message: Words = NOTHING  # the operator's latest words to customers
    postmortem: Words = NOTHING
    maintenance_id: str = ""  # opened because the service was still down when this ended
    never_up: bool = False  # its failing checks never answered: ops hear, customers do not
    closed_failing: bool = False  # resolved by hand while still failing: closed, not restored
    manual: bool = False  # opened by an operator (no probe found it): only an operator resolves it

    @property
    def covered(self) -> tuple[str, ...]:
        """The services this incident speaks for, root first."""
        return self.services or (self.service_id,)


class ChangeKind(StrEnum):
    """What happened to an incident; each kind may produce notices."""

    OPENED = "opened"  # confirmed down: the incident exists, ops hear of it
    JOINED = "joined"  # a dependant failed while its dependency's incident is open
    MERGED = "merged"  # an untold incident folded into its dependency's: closed quietly
    ANNOUNCED = "announced"  # past customer_delay (and the digest window): first notice
    UNSTABLE = "unstable"  # a check flaps: one "unstable service" notice, no up/down stream
    UPDATE = "update"  # the promised cadence is due, or an operator posted news
    IDENTIFIED = "identified"  # an operator knows the cause
    RECOVERING = "recovering"  # the services answer again: watch them for stable_for
    RELAPSED = "relapsed"  # failed again while monitoring: same incident, no new first notice
    RESOLVED = "resolved"  # stable for stable_for, resolved by hand, or recovered untold
    POSTMORTEM = "postmortem"  # an operator published what happened and what changes


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One step in an incident's life, with the incident as it is after the step."""

    kind: ChangeKind
    incident: Incident
    at: float
    services: tuple[str, ...] = ()  # for JOINED: the services that joined
    said: Words = NOTHING  # the operator's words that made this change, if any
    review: bool = False  # RESOLVED by an operator who announced a review (a postmortem)
    page_only: bool = False  # an operator's UPDATE for the status page and feed: no email


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
    never_up: bool = False  # every failing check has never answered (a typo, a port not open)


@dataclass(frozen=True, slots=True)
class Timing:
    """How patient forewarn is with customers for one service."""

    customer_delay: float
    update_every: float
    stable_for: float


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything ``apply`` needs besides state: timing, dependencies, who reads, the digest."""

    timing: Callable[[str], Timing]
    depends_on: Mapping[str, frozenset[str]] = field(default_factory=dict)  # transitive
    digest_window: float = 0.0
    audience: Mapping[str, frozenset[str]] = field(default_factory=dict)  # service → customers

    def readers(self, incident: Incident) -> frozenset[str]:
        """The customers of every service ``incident`` covers."""
        return frozenset().union(*(self.audience.get(s, frozenset()) for s in incident.covered))


def incident_id(service_id: str, first_failure_at: float) -> str:
    """A readable, unique id: the service and the UTC time of the first failure, to the ms.

    Milliseconds, because a relapse right after a quiet resolution can start within the
    same second, and an id (with the notice keys made from it) must never be reused.
    """
    moment = datetime.fromtimestamp(first_failure_at, UTC)
    return f"{service_id}-{moment:%Y%m%dT%H%M%S}-{moment.microsecond // 1000:03d}"


def resolved(incident: Incident, now: float, *, recovered: bool = True) -> Incident:
    """``incident`` resolved at ``now``; customers who were told get one more message.

    ``recovered=False`` closes it while it still fails: no recovery time is made up.
    """
    told = incident.customers_told_at is not None
    recovered_at = incident.recovered_at
    if recovered_at is None and recovered:
        recovered_at = now
    return replace(
        incident,
        status=IncidentStatus.RESOLVED,
        resolved_at=now,
        recovered_at=recovered_at,
        closed_failing=incident.closed_failing or not recovered,
        next_update_at=None,
        sequence=incident.sequence + (1 if told else 0),
    )


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """One customer-facing entry of an incident's timeline."""

    incident_id: str
    at: float
    status: str  # IncidentStatus value after this entry
    kind: str  # ChangeKind value, or the operator action
    message: Words  # operator text, or NOTHING for an automatic entry
