"""What to say to whom and when: incident and maintenance changes become rendered notices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from monitor.config.load import Config, Customer
from monitor.core.notice import Notice, NoticeKind, notice_key, one_line
from monitor.core.render import Renderer
from monitor.domain.incidents import ChangeKind, IncidentChange
from monitor.domain.maintenance import MaintenanceChange, MaintenanceKind
from monitor.notices.audience import addressee, affected, reachable
from monitor.notices.context import ContextBuilder
from monitor.notices.ops import OpsWriter
from monitor.notices.unsubscribe import UnsubscribeSigner, unsubscribe_url

# The customer email each incident change calls for; JOINED is a first notice for the
# customers of the services that joined.
_CUSTOMER_KINDS = {
    ChangeKind.ANNOUNCED: NoticeKind.FIRST,
    ChangeKind.JOINED: NoticeKind.FIRST,
    ChangeKind.UNSTABLE: NoticeKind.UNSTABLE,
    ChangeKind.UPDATE: NoticeKind.UPDATE,
    ChangeKind.IDENTIFIED: NoticeKind.UPDATE,
    ChangeKind.RESOLVED: NoticeKind.RESOLVED,
    ChangeKind.POSTMORTEM: NoticeKind.POSTMORTEM,
}
_MAINTENANCE_KINDS = {
    MaintenanceKind.PLANNED: NoticeKind.MAINTENANCE_PLANNED,
    MaintenanceKind.STARTED: NoticeKind.MAINTENANCE_STARTED,
    MaintenanceKind.EXTENDED: NoticeKind.MAINTENANCE_EXTENDED,
    MaintenanceKind.ENDED: NoticeKind.MAINTENANCE_ENDED,
    MaintenanceKind.CANCELLED: NoticeKind.MAINTENANCE_CANCELLED,
}


@dataclass(frozen=True, slots=True)
class _Told:
    """One incident a customer email speaks of, and the customer's services it hits."""

    change: IncidentChange
    services: list[str]


CUSTOMER_CHANNEL = "email"  # customers are written to by email; ops choose their channels


class NoticePlanner:
    """Turns incident and maintenance changes into rendered notices for each reader."""

    def __init__(
        self, config: Config, renderer: Renderer, signer: UnsubscribeSigner | None = None
    ) -> None:
        self.config = config
        self.renderer = renderer
        self.signer = signer
        self.context = ContextBuilder(config)
        self.ops = OpsWriter(config)

    def plan(
        self, changes: Sequence[IncidentChange], now: float, blocked: Set[str] = frozenset()
    ) -> list[Notice]:
        """Ops notices, then one customer email per customer and kind: a digest when several.

        ``blocked`` holds unsubscribed and bounced addresses, which get nothing.
        """
        notices = [n for change in changes for n in self.ops.incident(change, now)]
        grouped: dict[tuple[str, NoticeKind], list[_Told]] = {}
        for change in changes:
            kind = _CUSTOMER_KINDS.get(change.kind)
            if kind is NoticeKind.FIRST and change.incident.unstable:
                kind = NoticeKind.UNSTABLE  # flapping from the start: "unstable" is the news
            if kind is None or change.page_only or change.incident.customers_told_at is None:
                continue  # customers never heard of it: nothing to follow up on
            for customer, services in self._readers(change, blocked):
                grouped.setdefault((customer.id, kind), []).append(_Told(change, services))
        customers = {c.id: c for c in self.config.customers}
        for (customer_id, kind), told in grouped.items():
            notices += self._incident_email(customers[customer_id], kind, told, blocked, now)
        return notices

    def _readers(
        self, change: IncidentChange, blocked: Set[str]
    ) -> list[tuple[Customer, list[str]]]:
        """Who reads about ``change``, each with their services concerned."""
        incident = change.incident
        if change.kind is ChangeKind.JOINED:
            # Only customers hearing of this incident for the first time.
            concerned, already = change.services, set(incident.announced) - set(change.services)
        else:
            concerned, already = incident.announced or incident.covered, set()
        readers = []
        for customer in affected(self.config.customers, concerned, blocked):
            if not already.intersection(customer.services):
                readers.append((customer, [s for s in concerned if s in customer.services]))
        return readers

    def _incident_email(
        self, customer: Customer, kind: NoticeKind, told: list[_Told], blocked: Set[str], now: float
    ) -> list[Notice]:
        language = customer.language or self.config.notices.default_language
        services = list(dict.fromkeys(s for t in told for s in t.services))
        context = self.context.base(customer, language, services)
        context["incidents"] = [
            self.context.incident(t.change, customer, language, t.services) for t in told
        ]
        promised = [t.change.incident.next_update_at for t in told]
        if kind in (NoticeKind.FIRST, NoticeKind.UPDATE, NoticeKind.UNSTABLE):
            soonest = min((p for p in promised if p is not None), default=None)
            context["next_update"] = self.context.next_update(soonest, customer, language)
        lead = told[0].change
        sequence: int | str = lead.incident.sequence
        if lead.kind is ChangeKind.JOINED:  # the incident's sequence did not move
            sequence = f"{sequence}+{'+'.join(lead.services)}"
        key = (lead.incident.id, sequence)
        return self._render(customer, kind, language, context, key, lead.incident.id, blocked, now)

    def plan_maintenance(
        self,
        changes: Sequence[MaintenanceChange],
        now: float,
        blocked: Set[str] = frozenset(),
        overrun: Mapping[str, Set[str]] | None = None,
    ) -> list[Notice]:
        """One email per change and subscribed customer of the window's services.

        A customer with a service still down at the window's end (``overrun``: window id →
        services) gets no "maintenance complete": the overrun's incident notice says the
        maintenance is not over, in one email.
        """
        notices = []
        for change in changes:
            kind = _MAINTENANCE_KINDS[change.kind]
            window = change.window
            still_down = (overrun or {}).get(window.id, frozenset())
            # Extensions repeat: the new end keeps each one's key apart.
            step = f"{change.kind.value}-{int(window.end)}"
            for customer in affected(self.config.customers, window.services, blocked):
                mine = [s for s in window.services if s in customer.services]
                if kind is NoticeKind.MAINTENANCE_ENDED and not still_down.isdisjoint(mine):
                    continue
                language = customer.language or self.config.notices.default_language
                context = self.context.base(customer, language, mine)
                previous = (
                    change.progress.told_end if kind is NoticeKind.MAINTENANCE_EXTENDED else None
                )
                context["maintenance"] = self.context.window(window, customer, language, previous)
                key = (f"maintenance-{window.id}", step)
                notices += self._render(
                    customer, kind, language, context, key, window.id, blocked, now
                )
        return notices

    def _render(
        self,
        customer: Customer,
        kind: NoticeKind,
        language: str,
        context: dict[str, Any],
        key: tuple[str, int | str],
        reference: str,
        blocked: Set[str],
        now: float,
    ) -> list[Notice]:
        """One notice per address of ``customer`` not blocked, each with its unsubscribe link."""
        notices = []
        for address in reachable(customer, blocked):
            unsubscribe = ""
            if self.signer is not None:
                token = self.signer.token(address)
                unsubscribe = unsubscribe_url(self.config.daemon.public_url, token)
            context["unsubscribe_url"] = unsubscribe
            subject, text, html = self.renderer.render(kind, language, context)
            notices.append(
                Notice(
                    key=notice_key(*key, addressee(customer, address)),
                    incident_id=reference,
                    kind=kind,
                    channel=CUSTOMER_CHANNEL,
                    recipient=customer.id,
                    address=address,
                    language=language,
                    subject=one_line(subject),
                    text=text,
                    html=html,
                    created_at=now,
                    unsubscribe_url=unsubscribe,
                )
            )
        return notices
