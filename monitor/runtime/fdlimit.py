"""Open-file limits: raise the soft one at start, and split what is left between listeners.

Every accepted connection is a descriptor, and so is every probe's socket. Connections are
capped below the soft limit minus a reserve sized for probing, so that a crowd of clients
can exhaust the listeners' share and never the probes' (issue 17: 500 held connections made
probes fail with "Too many open files" and opened a false incident).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import structlog

log = structlog.get_logger("forewarn.fdlimit")

BASE_RESERVE = 128  # SQLite (db, WAL, shm), logs, worker pipes, SMTP, webhooks, resolver
PER_PROBE = 2  # a probe's socket, and a pooled one it may leave behind for a moment
MIN_CONNECTIONS = 8  # below this a listener is useless; the limit is then logged as too low
ADMIN_SHARE = 4  # the admin listener gets at most a quarter of the budget …
ADMIN_MAX = 256  # … and no more than this: operators, scrapers and heartbeat senders


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How many connections one listener holds at once, in all and per client address."""

    total: int
    per_address: int


def raise_soft_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one; the (soft, hard) limits in force.

    A seccomp filter (the unit's ``SystemCallFilter=~@resources``) refuses the call: the unit
    sets ``LimitNOFILE`` itself, so a refusal is logged and the limits stay as they are.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.warning("nofile_not_raised", soft=soft, hard=hard, error=str(exc))
        return soft, hard
    return hard, hard


def reserve_for(probes_in_flight: int) -> int:
    """Descriptors kept for probing and the daemon's own files, never for connections."""
    return BASE_RESERVE + PER_PROBE * probes_in_flight


def split(
    soft: int, reserve: int, max_total: int, per_address: int, *, admin: bool
) -> tuple[ConnectionLimits, ConnectionLimits | None]:
    """Limits of the public listener and of the admin one (None without ``admin``)."""
    budget = max(MIN_CONNECTIONS, soft - reserve)
    if soft - reserve < MIN_CONNECTIONS:
        log.warning("nofile_too_low", soft=soft, reserve=reserve, connections=budget)
    admin_total = min(ADMIN_MAX, max(MIN_CONNECTIONS, budget // ADMIN_SHARE)) if admin else 0
    public_total = max(MIN_CONNECTIONS, min(max_total, budget - admin_total))
    public = ConnectionLimits(public_total, min(per_address, public_total))
    if not admin:
        return public, None
    return public, ConnectionLimits(admin_total, min(per_address, admin_total))
