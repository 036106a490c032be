"""What the engine reads off a Config as data: dependency closures, audiences, windows."""

from __future__ import annotations

from monitor.config.load import Config
from monitor.domain.maintenance import Window


def ancestors(config: Config) -> dict[str, frozenset[str]]:
    """Every service each service depends on, directly or not (the config has no cycles)."""
    direct = {s.id: set(s.depends_on) for s in config.services}
    closure: dict[str, frozenset[str]] = {}

    def walk(service_id: str) -> frozenset[str]:
        if service_id not in closure:
            found = set(direct.get(service_id, ()))
            for parent in direct.get(service_id, ()):
                found |= walk(parent)
            closure[service_id] = frozenset(found)
        return closure[service_id]

    for service in config.services:
        walk(service.id)
    return closure


def audience(config: Config) -> dict[str, frozenset[str]]:
    """The customers of each service, by id."""
    readers: dict[str, set[str]] = {s.id: set() for s in config.services}
    for customer in config.customers:
        for service_id in customer.services:
            readers.setdefault(service_id, set()).add(customer.id)
    return {service_id: frozenset(ids) for service_id, ids in readers.items()}


def config_windows(config: Config) -> list[Window]:
    """The maintenance windows written in checks.yaml."""
    return [
        Window(
            id=w.id,
            services=tuple(w.services),
            start=w.start.timestamp(),
            end=w.end.timestamp(),
            announce_before=w.announce_before,
            summary={str(k): v for k, v in (w.summary or {}).items()},
        )
        for w in config.maintenance
    ]
