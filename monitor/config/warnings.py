"""What check-config warns about: settings that run, but are unlikely to be what was meant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.config.yamlsource import Located

if TYPE_CHECKING:
    from monitor.config.load import Config

UPDATE_EVERY_FLOOR_S = 300.0  # below this, a long outage floods each customer's inbox


def warnings(config: Config, doc: Located) -> list[str]:
    """``file:line: key: warning: …`` for each setting of ``config`` (from ``doc``) to rethink."""
    found: list[tuple[tuple[Any, ...], float]] = []
    if ("notices", "update_every") in doc.lines:  # the built-in 30m is fine: only what is written
        found.append((("notices", "update_every"), config.notices.update_every))
    for i, service in enumerate(config.services):
        if service.update_every is not None:
            found.append((("services", i, "update_every"), service.update_every))
    found.sort(key=lambda item: doc.line_of(item[0]))
    said = [
        doc.where(
            key,
            f"warning: {_spoken(seconds)} is under 5 minutes: customers of an outage "
            f"would get an update email every {_spoken(seconds)}",
        )
        for key, seconds in found
        if seconds < UPDATE_EVERY_FLOOR_S
    ]
    daemon = config.daemon
    if daemon.admin_listen is None and daemon.is_exposed():
        said.insert(
            0,
            doc.where(
                ("daemon", "listen"),
                f"warning: {daemon.listen} is reachable from other hosts and serves /metrics, "
                "/healthz, the operator API and heartbeats too; set daemon.admin_listen to a "
                "private address (such as 127.0.0.1:9471) to keep them off the public port",
            ),
        )
    return said


def _spoken(seconds: float) -> str:
    """``90s``, ``2m`` or ``500ms``: a duration as checks.yaml writes it."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"
