"""Sample notices for ``forewarn notices preview``: realistic changes, through the real planner.

An incident or window is made up for one service and one customer of the configuration, then
planned exactly as the engine plans a real one (context, renderer, ``templates_dir``
overrides, unsubscribe link): what the preview shows is what that customer would receive.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from monitor.config.load import Config, Customer, Service
from monitor.core.notice import CUSTOMER_KINDS, Notice, NoticeKind
from monitor.core.render import Renderer
from monitor.core.words import NOTHING, Words
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentChange,
    IncidentStatus,
    incident_id,
    resolved,
)
from monitor.domain.maintenance import (
    MaintenanceChange,
    MaintenanceKind,
    Window,
    WindowProgress,
)
from monitor.notices.planner import CUSTOMER_CHANNEL, NoticePlanner
from monitor.notices.unsubscribe import UnsubscribeSigner

KINDS = tuple(sorted(str(kind) for kind in CUSTOMER_KINDS))
_HOUR = 3600.0
_SAID = {
    ChangeKind.IDENTIFIED: Words.of(
        {
            "fr": "Le transporteur a identifié la cause : un équipement réseau défaillant.",
            "en": "The carrier has found the cause: a faulty network device.",
        }
    ),
    ChangeKind.RESOLVED: Words.of(
        {
            "fr": "L'équipement défaillant a été remplacé.",
            "en": "The faulty device has been replaced.",
        }
    ),
}
_POSTMORTEM = Words.of(
    {
        "fr": "Cause : un répartiteur de charge saturé.\n"
        "Mesures : capacité doublée, alerte ajoutée.",
        "en": "Cause: a saturated load balancer.\nMeasures: capacity doubled, alert added.",
    }
)
_SUMMARY = {
    "fr": "Mise à jour des serveurs du transporteur.",
    "en": "The carrier's servers are being upgraded.",
}
_SAMPLE_CUSTOMER = {"id": "sample", "name": "Transports Martin", "email": "it@example.net"}


class PreviewError(ValueError):
    """A service or customer the configuration does not have."""


def reader(
    config: Config, service_id: str | None, customer_id: str | None, language: str | None
) -> tuple[Customer, Service]:
    """The customer (subscribed to the service, in ``language``) and service of a preview."""
    services = {s.id: s for s in config.services}
    customers = {c.id: c for c in config.customers}
    if service_id is not None and service_id not in services:
        raise PreviewError(f"unknown service {service_id} (known: {', '.join(services)})")
    if customer_id is not None and customer_id not in customers:
        known = ", ".join(customers) or "none"
        raise PreviewError(f"unknown customer {customer_id} (known: {known})")
    if customer_id is not None:
        customer = customers[customer_id]
    else:
        subscribed = [c for c in config.customers if service_id in c.services]
        fallback = [*subscribed, *config.customers]
        customer = fallback[0] if fallback else Customer.model_validate(_SAMPLE_CUSTOMER)
    if service_id is None:
        service_id = next((s for s in customer.services if s in services), config.services[0].id)
    customer = customer.model_copy(
        update={"services": [service_id], "language": language or customer.language}
    )
    return customer, services[service_id]


def preview(
    config: Config,
    kind: str,
    now: float,
    *,
    service_id: str | None = None,
    customer_id: str | None = None,
    language: str | None = None,
) -> Notice:
    """The notice of ``kind`` that one customer would receive about one service."""
    customer, service = reader(config, service_id, customer_id, language)
    # The configuration as the planner sees it, narrowed to this one reader.
    scene = config.model_copy(update={"customers": [customer]})
    signer = UnsubscribeSigner(secrets.token_bytes(32))  # a sample link, no key on disk
    planner = NoticePlanner(scene, Renderer(config.notices.templates_dir), signer)
    wanted = NoticeKind(kind)
    if kind.startswith("maintenance_"):
        notices = planner.plan_maintenance([_maintenance(config, service, wanted, now)], now)
    else:
        notices = planner.plan([_incident_change(config, service, wanted, now)], now)
    return next(n for n in notices if n.channel == CUSTOMER_CHANNEL and n.kind is wanted)


def _incident_change(
    config: Config, service: Service, kind: NoticeKind, now: float
) -> IncidentChange:
    """An incident of ``service`` at the step that calls for a notice of ``kind``."""
    done = kind in (NoticeKind.RESOLVED, NoticeKind.POSTMORTEM)
    first_failure = now - (2 * _HOUR + 300 if done else 14 * 60)
    check = next((c for c in config.checks if c.service == service.id), None)
    every = service.update_every or config.notices.update_every
    incident = Incident(
        id=incident_id(service.id, first_failure),
        service_id=service.id,
        status=IncidentStatus.INVESTIGATING,
        opened_at=first_failure + 60,
        first_failure_at=first_failure,
        sequence=1,
        customers_told_at=first_failure + 120,
        next_update_at=now + every,
        reason="http_status",
        detail="HTTP 503 Service Unavailable",
        services=(service.id,),
        announced=(service.id,),
        check_id=check.id if check is not None else "",
        unstable=kind is NoticeKind.UNSTABLE,
    )
    step = {
        NoticeKind.FIRST: ChangeKind.ANNOUNCED,
        NoticeKind.UPDATE: ChangeKind.IDENTIFIED,
        NoticeKind.UNSTABLE: ChangeKind.UNSTABLE,
        NoticeKind.RESOLVED: ChangeKind.RESOLVED,
        NoticeKind.POSTMORTEM: ChangeKind.POSTMORTEM,
    }[kind]
    said = _SAID.get(step, NOTHING)
    if step is ChangeKind.IDENTIFIED:
        incident = replace(incident, status=IncidentStatus.IDENTIFIED, message=said, sequence=2)
    if done:
        stable = service.stable_for or config.notices.stable_for
        incident = replace(
            incident, recovered_at=now - stable, message=_SAID[ChangeKind.IDENTIFIED]
        )
        incident = resolved(incident, now)
    if step is ChangeKind.POSTMORTEM:
        incident = replace(incident, postmortem=_POSTMORTEM, sequence=incident.sequence + 1)
    return IncidentChange(step, incident, now, said=said)


def _maintenance(
    config: Config, service: Service, kind: NoticeKind, now: float
) -> MaintenanceChange:
    """A two-hour window on ``service`` at the step that calls for a notice of ``kind``."""
    configured = next((m for m in config.maintenance if service.id in m.services), None)
    summary: dict[str, str] = _SUMMARY
    if configured is not None and configured.summary:
        summary = {str(lang): text for lang, text in configured.summary.items()}
    step = MaintenanceKind(kind.removeprefix("maintenance_"))
    # Planned and cancelled speak of tomorrow's window; the others of one under way or just over.
    start = {
        MaintenanceKind.PLANNED: now + 24 * _HOUR,
        MaintenanceKind.CANCELLED: now + 24 * _HOUR,
        MaintenanceKind.ENDED: now - 2 * _HOUR,
    }.get(step, now - 30 * 60)
    end = start + 2 * _HOUR
    window = Window(
        id=configured.id if configured is not None else "release-sample",
        services=(service.id,),
        start=start,
        end=end + (_HOUR if step is MaintenanceKind.EXTENDED else 0),
        announce_before=24 * _HOUR,
        summary=summary,
        cancelled=step is MaintenanceKind.CANCELLED,
    )
    progress = WindowProgress(window.id, announced_at=now - 24 * _HOUR, told_end=end)
    return MaintenanceChange(step, window, progress, now)
