"""Who is affected: subscribers of a service, minus unsubscribed and bounced addresses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from monitor.config.load import Customer


def affected(
    customers: Sequence[Customer], service_ids: Iterable[str], suppressed: Iterable[str] = ()
) -> list[Customer]:
    """Subscribers of any of ``service_ids`` with an address not suppressed, each once."""
    wanted = set(service_ids)
    blocked = {address.lower() for address in suppressed}
    return [c for c in customers if wanted.intersection(c.services) and reachable(c, blocked)]


def reachable(customer: Customer, blocked: Iterable[str]) -> list[str]:
    """The customer's addresses that are neither unsubscribed nor bounced (in ``blocked``)."""
    folded = {address.lower() for address in blocked}
    return [address for address in customer.email if address.lower() not in folded]


def addressee(customer: Customer, address: str) -> str:
    """The recipient part of a notice key: the customer id, plus a digest for a second address."""
    # The first address keeps the key a one-address customer always had; the others get their own.
    if address == customer.email[0]:
        return customer.id
    return f"{customer.id}~{hashlib.sha256(address.lower().encode()).hexdigest()[:12]}"
