"""Who is affected: subscribers of a service, minus unsubscribed and bounced addresses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.config.load import Customer


def affected(
    customers: Sequence[Customer], service_ids: Iterable[str], suppressed: Iterable[str] = ()
) -> list[Customer]:
    """Subscribers of any of ``service_ids``, minus suppressed addresses, each once."""
    wanted = set(service_ids)
    blocked = {address.lower() for address in suppressed}
    return [
        c for c in customers if wanted.intersection(c.services) and c.email.lower() not in blocked
    ]
