"""What the public may see, as one value: services, their 90 days, incidents and maintenance.

Everything public (the status page, its JSON, the Atom feed, badges) is drawn from a
``Snapshot``, and a ``Snapshot`` holds only allowlisted fields: names, states, customer-facing
texts and times. Check ids, URLs, reasons and details never enter it, so no page can leak them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo

from monitor.config.load import Config, Service
from monitor.core.fields import LANGUAGES
from monitor.core.words import Words
from monitor.domain import availability as history
from monitor.domain import maintenance
from monitor.domain.availability import Tally
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import Incident, IncidentUpdate, ServiceView
from monitor.domain.maintenance import Window, WindowProgress
from monitor.status.brand import Brand, brand

RECENT_S = 14 * 86400  # resolved incidents listed on the page
PHONE_DAYS = 30  # the bar's days on a narrow screen (the stylesheet hides the others)


class PublicState(StrEnum):
    """A service's state in the words of a status page."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    OUTAGE = "outage"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"  # no result yet, just after start


_STATES = {
    CheckStatus.UP: PublicState.OPERATIONAL,
    CheckStatus.DEGRADED: PublicState.DEGRADED,
    CheckStatus.FLAPPING: PublicState.DEGRADED,
    CheckStatus.DOWN: PublicState.OUTAGE,
    CheckStatus.MAINTENANCE: PublicState.MAINTENANCE,
    CheckStatus.UNKNOWN: PublicState.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class DayCell:
    """One day of a service's bar."""

    day: date
    availability: float | None  # None: no result that day
    incidents: tuple[str, ...]  # ids of the public incidents that touched the day


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One service as the public sees it."""

    id: str
    names: Mapping[str, str]  # language → name
    state: PublicState
    since: float | None  # when it entered this state; None before the first result
    uptime: float | None  # over the days shown that have data
    days: tuple[DayCell, ...]  # oldest first, today last
    uptime_30: float | None = None  # over the last 30 of them (what a phone shows)
    measured_days: int = 0  # days with data among those shown: what ``uptime`` is over
    measured_days_30: int = 0

    def measured(self, shown: int) -> int:
        """Days with data among the last ``shown``: the others count for nothing."""
        return sum(1 for c in self.days[-shown:] if c.availability is not None)


@dataclass(frozen=True, slots=True)
class PublicIncident:
    """An incident with only what customers may read, and its timeline."""

    id: str
    services: tuple[str, ...]
    status: str
    unstable: bool
    opened_at: float
    first_failure_at: float
    recovered_at: float | None
    resolved_at: float | None
    next_update_at: float | None  # the next update customers were promised, while open
    message: Words  # read in the page's language
    postmortem: Words
    updates: tuple[IncidentUpdate, ...]  # oldest first

    @property
    def updated_at(self) -> float:
        """When anything last happened to it."""
        return max([self.opened_at, *(u.at for u in self.updates)])


@dataclass(frozen=True, slots=True)
class PublicWindow:
    """A maintenance window that is coming or running."""

    id: str
    services: tuple[str, ...]
    start: float
    end: float
    summary: Mapping[str, str]  # language → text
    running: bool
    cancelled: bool
    progress: WindowProgress


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything public at one moment."""

    generated_at: float
    changed_at: float  # latest state change, incident entry or maintenance step
    measured_at: float | None  # latest probe result counted in the bars
    zone: ZoneInfo
    default_language: str
    public_url: str
    services: tuple[ServiceStatus, ...]
    open: tuple[PublicIncident, ...]  # newest first
    resolved: tuple[PublicIncident, ...]  # resolved within RECENT_S and told, newest first
    maintenance: tuple[PublicWindow, ...]  # running, then upcoming, by start
    past_maintenance: tuple[PublicWindow, ...]  # ended or cancelled within RECENT_S, newest first
    brand: Brand  # the company's title, logo and contact, as configured

    def service(self, service_id: str) -> ServiceStatus | None:
        """The service with this id, if public."""
        return next((s for s in self.services if s.id == service_id), None)

    def incident(self, incident_id: str) -> PublicIncident | None:
        """A listed incident by id."""
        return next((i for i in (*self.open, *self.resolved) if i.id == incident_id), None)


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a snapshot is built from, gathered from the engine and the store."""

    config: Config
    views: Mapping[str, ServiceView]
    open: Sequence[Incident]
    past: Sequence[Incident]  # resolved within the days shown
    timelines: Mapping[str, Sequence[IncidentUpdate]]
    windows: Sequence[Window]
    progress: Mapping[str, WindowProgress]
    days: Sequence[Tally]
    measured_at: float | None


def public(incident: Incident) -> bool:
    """Whether an incident is shown: while open, and afterwards if customers were told."""
    return incident.resolved_at is None or incident.customers_told_at is not None


def build(inputs: Inputs, now: float) -> Snapshot:
    """The public snapshot at ``now``."""
    config = inputs.config
    zone = ZoneInfo(config.daemon.timezone)
    shown = [i for i in (*inputs.open, *inputs.past) if public(i)]
    incidents = {i.id: _incident(i, inputs.timelines.get(i.id, ())) for i in shown}
    in_window = maintenance.active(inputs.windows, now)
    checks_of, tallies = _by_service(config, inputs.days)
    days = [(d, *history.day_bounds(d, zone)) for d in history.last_days(now, zone)]
    services = tuple(
        _service(
            service, checks_of[service.id], tallies[service.id], inputs, in_window, shown, days, now
        )
        for service in config.services
    )
    open_ = sorted(
        (incidents[i.id] for i in shown if i.resolved_at is None),
        key=lambda i: i.opened_at,
        reverse=True,
    )
    resolved = sorted(
        (
            incidents[i.id]
            for i in shown
            if i.resolved_at is not None and i.resolved_at >= now - RECENT_S
        ),
        key=lambda i: i.resolved_at or 0.0,
        reverse=True,
    )
    windows, past_windows = _windows(inputs, now)
    return Snapshot(
        generated_at=now,
        changed_at=_changed_at(services, incidents.values(), (*windows, *past_windows), now),
        measured_at=inputs.measured_at,
        zone=zone,
        default_language=config.notices.default_language,
        public_url=config.daemon.public_url,
        services=services,
        open=tuple(open_),
        resolved=tuple(resolved),
        maintenance=windows,
        past_maintenance=past_windows,
        brand=brand(config),
    )


def _by_service(
    config: Config, days: Iterable[Tally]
) -> tuple[dict[str, list[str]], dict[str, list[Tally]]]:
    """Each service's check ids and day tallies, grouped once so each reads only its own."""
    checks_of: dict[str, list[str]] = {s.id: [] for s in config.services}
    for check in config.checks:
        checks_of.setdefault(check.service, []).append(check.id)
    service_of = {c: s for s, ids in checks_of.items() for c in ids}
    tallies: dict[str, list[Tally]] = {s: [] for s in checks_of}
    for tally in days:
        if tally.check_id in service_of:
            tallies[service_of[tally.check_id]].append(tally)
    return checks_of, tallies


def _changed_at(
    services: Iterable[ServiceStatus],
    incidents: Iterable[PublicIncident],
    windows: Iterable[PublicWindow],
    now: float,
) -> float:
    """When anything shown last changed: a service's state, an incident, a window's step."""
    steps = [
        t
        for w in windows
        for t in (
            w.progress.announced_at,
            w.progress.started_at,
            w.progress.ended_at,
            w.progress.cancelled_at,
        )
        if t is not None
    ]
    changed = [
        *(s.since for s in services if s.since is not None),
        *(i.updated_at for i in incidents),
        *steps,
    ]
    return max(changed, default=now)


def _service(
    service: Service,
    check_ids: Sequence[str],
    tallies: Sequence[Tally],
    inputs: Inputs,
    in_window: Mapping[str, Window],
    incidents: Sequence[Incident],
    days: Sequence[tuple[date, float, float]],
    now: float,
) -> ServiceStatus:
    service_id = service.id
    view = inputs.views.get(service_id)
    since = view.since if view is not None else None
    mine = [i for i in incidents if service_id in i.covered]
    # An operator said it is down: checks that answer never saw that outage (issue 20).
    by_hand = [i.first_failure_at for i in mine if i.manual and i.resolved_at is None]
    if service_id in in_window:
        state, since = PublicState.MAINTENANCE, in_window[service_id].start
    elif by_hand:
        state, since = PublicState.OUTAGE, min(by_hand)
    elif view is None:
        state = PublicState.UNKNOWN
    else:
        state = PublicState.DEGRADED if view.flapping else _STATES[view.status]
    by_day = history.by_bucket(tallies)
    cells = []
    for day, start, end in days:
        touched = tuple(
            i.id
            for i in mine
            if i.first_failure_at < end
            and (i.resolved_at if i.resolved_at is not None else now) >= start
        )
        availability = history.service_ratio(by_day.get(day.isoformat(), ()), check_ids)
        cells.append(DayCell(day, availability, touched))
    recent = {day.isoformat() for day, _, _ in days[-PHONE_DAYS:]}
    shown = ServiceStatus(
        id=service_id,
        names={lang: service.display_name(lang) for lang in sorted(LANGUAGES)},
        state=state,
        since=since,
        uptime=history.service_ratio(tallies, check_ids),
        days=tuple(cells),
        uptime_30=history.service_ratio([t for t in tallies if t.bucket in recent], check_ids),
    )
    return replace(
        shown, measured_days=shown.measured(len(cells)), measured_days_30=shown.measured(PHONE_DAYS)
    )


def _incident(incident: Incident, timeline: Sequence[IncidentUpdate]) -> PublicIncident:
    return PublicIncident(
        id=incident.id,
        services=incident.covered,
        status=str(incident.status),
        unstable=incident.unstable,
        opened_at=incident.opened_at,
        first_failure_at=incident.first_failure_at,
        recovered_at=incident.recovered_at,
        resolved_at=incident.resolved_at,
        next_update_at=incident.next_update_at if incident.resolved_at is None else None,
        message=incident.message,
        postmortem=incident.postmortem,
        updates=tuple(timeline),
    )


def _windows(
    inputs: Inputs, now: float
) -> tuple[tuple[PublicWindow, ...], tuple[PublicWindow, ...]]:
    """Windows running or to come (called off ones too), and those that ran within ``RECENT_S``."""
    current, past = [], []
    for window in inputs.windows:
        told = inputs.progress.get(window.id, WindowProgress(window.id))
        cancelled = window.cancelled or told.cancelled_at is not None
        stopped = told.cancelled_at if cancelled else (told.ended_at or window.end)
        told_any = told.announced_at is not None or told.started_at is not None
        shown = PublicWindow(
            window.id,
            window.services,
            window.start,
            window.end,
            window.summary,
            running=window.start <= now < window.end and not cancelled,
            cancelled=cancelled,
            progress=told,
        )
        if cancelled and told.started_at is None:
            # Called off before it began: it never happened, so it is no past maintenance;
            # customers who heard of it see it called off until its start.
            if told_any and window.start > now:
                current.append(shown)
        elif not cancelled and window.end > now:
            current.append(shown)
        elif told_any and stopped is not None and stopped >= now - RECENT_S:
            past.append(shown)
    current.sort(key=lambda w: (not w.running, w.start, w.id))
    past.sort(key=lambda w: (w.end, w.id), reverse=True)
    return tuple(current), tuple(past)
