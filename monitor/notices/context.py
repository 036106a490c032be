"""What a customer template sees: incidents and windows as plain dicts, in the reader's terms."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from monitor.config.load import Config, Customer
from monitor.core.notice import one_line
from monitor.core.render import format_duration, format_time
from monitor.domain.incidents import ChangeKind, IncidentChange
from monitor.domain.maintenance import Window

# Whatever looks like a credential in a probe's detail, for customers who read it.
_SECRET = re.compile(
    r"(?i)\b(passw(?:or)?d|secret|token|api[_-]?key|authori[sz]ation|cookie)(\s*[=:]\s*)\S+"
)
_QUERY = re.compile(r"(https?://[^\s?#]*)\?\S*")
_USERINFO = re.compile(r"(https?://)[^\s/@]+@")


def scrub(text: str) -> str:
    """``text`` without credentials, URL query strings or user:password parts."""
    text = _SECRET.sub(r"\1\2[redacted]", text)
    text = _QUERY.sub(r"\1?[redacted]", text)
    return _USERINFO.sub(r"\1[redacted]@", text)


class ContextBuilder:
    """Formats incidents and windows for one customer: their language, zone and detail."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def names(self, service_ids: list[str] | tuple[str, ...], language: str) -> list[str]:
        """Display names of ``service_ids`` in ``language``, in configuration order."""
        wanted = set(service_ids)
        return [s.display_name(language) for s in self.config.services if s.id in wanted]

    def base(self, customer: Customer, language: str, services: list[str]) -> dict[str, Any]:
        """The variables every customer template has."""
        return {
            "customer_name": one_line(customer.name),
            "language": language,
            "services": self.names(services, language),
            "incidents": [],
            "next_update": "",
            "status_url": f"{self.config.daemon.public_url}/",
            "sender": self.config.notices.from_.split("<")[0].strip() or "forewarn",
            "unsubscribe_url": "",
            "technical": customer.detail == "technical",
            "maintenance": None,
        }

    def incident(
        self, change: IncidentChange, customer: Customer, language: str, mine: list[str]
    ) -> dict[str, Any]:
        """One incident as a template item; ``mine`` are the customer's services it hits."""
        incident = change.incident
        when = partial(format_time, zone=self.config.zone(customer), language=language)
        recovered = incident.recovered_at
        fallback = self.config.notices.default_language
        # A resolution quotes only the words said with it: the latest update may be stale.
        said = change.said if change.kind is ChangeKind.RESOLVED else incident.message
        lasted = (recovered or incident.resolved_at or change.at) - incident.first_failure_at
        technical = []
        if customer.detail == "technical" and incident.check_id:
            technical.append(
                {
                    "check": incident.check_id,
                    "reason": incident.reason,
                    "detail": scrub(incident.detail),
                }
            )
        return {
            "id": incident.id,
            "services": self.names(mine, language),
            "status": incident.status.value,
            "first_failure": when(incident.first_failure_at),
            "recovered": when(recovered) if recovered is not None else "",
            "duration": format_duration(recovered - incident.first_failure_at, language)
            if recovered is not None
            else "",
            "message": said.text(language, fallback),
            "postmortem": incident.postmortem.text(language, fallback),
            "impact": "; ".join(self.impacts(mine, language)),
            "review": change.review or lasted >= self.config.notices.review_after,
            "unstable": incident.unstable,
            "overrun": bool(incident.maintenance_id),
            "closed": incident.closed_failing,
            "technical": technical,
        }

    def impacts(self, service_ids: list[str], language: str) -> list[str]:
        """What customers of ``service_ids`` experience, for those that say it (no repeats)."""
        wanted = set(service_ids)
        texts = [s.impact_text(language) for s in self.config.services if s.id in wanted]
        return [one_line(t) for t in dict.fromkeys(texts) if t]

    def next_update(self, at: float | None, customer: Customer, language: str) -> str:
        """When the next update comes, in the customer's terms ("" when none is promised)."""
        if at is None:
            return ""
        return format_time(at, zone=self.config.zone(customer), language=language)

    def window(
        self, window: Window, customer: Customer, language: str, previous_end: float | None
    ) -> dict[str, Any]:
        """A maintenance window as the ``maintenance`` variable."""
        when = partial(format_time, zone=self.config.zone(customer), language=language)
        summary = window.summary.get(language) or next(iter(window.summary.values()), "")
        return {
            "id": window.id,
            "summary": summary,
            "start": when(window.start),
            "end": when(window.end),
            "previous_end": when(previous_end) if previous_end is not None else "",
            "duration": format_duration(window.end - window.start, language),
        }
