"""Which routes each listener serves, and starting the listeners within the open-file budget.

With ``daemon.admin_listen`` set, ``daemon.listen`` serves only what the public may see (the
page, badges, feed, JSON, unsubscribe) and the admin address serves /metrics, /healthz, the
operator API and heartbeats. Without it, one listener serves everything, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from monitor.config.load import DaemonConfig
from monitor.domain.operations import Operations
from monitor.notices.unsubscribe import UnsubscribeSigner
from monitor.probes.heartbeat import HeartbeatBook
from monitor.runtime.fdlimit import raise_soft_limit, reserve_for, split
from monitor.runtime.metrics import Metrics
from monitor.status.source import StatusBoard
from monitor.store.base import Store
from monitor.web.api import add_api_routes
from monitor.web.app import Health, add_admin_routes, new_app
from monitor.web.auth import BearerAuth
from monitor.web.caching import BOARD_KEY
from monitor.web.feed import add_feed_routes
from monitor.web.listeners import Guard, Listener
from monitor.web.opening import add_opening_routes
from monitor.web.public_api import add_public_api_routes
from monitor.web.status import add_status_routes
from monitor.web.suppressions import add_suppression_routes
from monitor.web.unsubscribe import add_unsubscribe_routes


@dataclass(frozen=True, slots=True)
class WebParts:
    """What the routes work with."""

    metrics: Metrics
    health: Health
    heartbeats: HeartbeatBook
    board: StatusBoard
    signer: UnsubscribeSigner
    store: Store
    operations: Operations
    auth: BearerAuth | None
    clock: Callable[[], float]
    unsubscribed: Callable[[str, float], None] | None = None  # hears of each unsubscription


def build_apps(parts: WebParts, *, admin: bool) -> tuple[web.Application, web.Application | None]:
    """The public application, and the admin one when it has its own address."""
    public = new_app()
    public[BOARD_KEY] = parts.board
    add_status_routes(public)
    add_feed_routes(public)
    add_public_api_routes(public)
    add_unsubscribe_routes(public, parts.signer, parts.store, parts.clock, parts.unsubscribed)
    private = new_app() if admin else public
    add_admin_routes(private, parts.metrics, parts.health, parts.heartbeats)
    add_api_routes(private, parts.operations, parts.auth, parts.clock)
    add_suppression_routes(private)
    add_opening_routes(private)
    return public, (private if admin else None)


class Serving:
    """The running listeners: the public one, and the admin one if configured."""

    def __init__(self, public: Listener, admin: Listener | None, limits: dict[str, int]) -> None:
        self.public = public
        self.admin = admin
        self.limits = limits  # for the ``started`` event

    @property
    def port(self) -> int:
        """The public listener's port."""
        return self.public.port

    @property
    def admin_port(self) -> int:
        """The port of /healthz and the operator API (the public one without admin_listen)."""
        return (self.admin or self.public).port

    async def stop(self) -> None:
        """Stop accepting and close every connection."""
        for listener in (self.public, self.admin):
            if listener is not None:
                await listener.stop()


async def serve(
    config: DaemonConfig,
    apps: tuple[web.Application, web.Application | None],
    metrics: Metrics,
    probes_in_flight: int,
) -> Serving:
    """Bind the listeners, their connection limits split from the open-file budget."""
    soft, hard = raise_soft_limit()
    reserve = reserve_for(probes_in_flight)
    public_app, admin_app = apps
    limits, admin_limits = split(
        soft,
        reserve,
        config.max_connections,
        config.max_connections_per_address,
        admin=admin_app is not None,
    )
    proxies = tuple(config.trusted_proxies)
    public = Listener(public_app, Guard("public", limits, metrics, proxies), config.header_timeout)
    await public.start(config.listen_host, config.listen_port)
    admin = None
    if admin_app is not None and admin_limits is not None and config.admin_listen:
        host, _, port = config.admin_listen.rpartition(":")
        guard = Guard("admin", admin_limits, metrics, proxies)
        admin = Listener(admin_app, guard, config.header_timeout)
        try:
            await admin.start(host.strip("[]"), int(port))
        except OSError:
            await public.stop()
            raise
    summary = {
        "nofile_soft": soft,
        "nofile_hard": hard,
        "connections": limits.total,
        "connections_per_address": limits.per_address,
        "admin_connections": admin_limits.total if admin_limits else 0,
    }
    return Serving(public, admin, summary)
