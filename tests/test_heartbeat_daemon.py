"""A running daemon pings daemon.heartbeat_url (its dead-man's switch) at heartbeat_every."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from monitor.config.load import Config
from monitor.daemon import Daemon
from tests.conftest import ConfigFactory
from tests.postgres_server import running_postgres
from tests.probe_servers import serve
from tests.waiting import holds, until


@contextlib.asynccontextmanager
async def ping_server(path: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A heartbeat receiver on 127.0.0.1: its base URL, and each ping as "METHOD path?query"."""
    pings: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        pings.append(f"{request.method} {request.path_qs}")
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get(path, ping)
    async with serve(app) as base:
        yield base, pings


async def test_a_daemon_pings_its_heartbeat_url_every_heartbeat_every(
    make_config: ConfigFactory,
    running: Callable[[Config], Awaitable[Daemon]],
    quiet_logs: None,
) -> None:
    """A SQLite daemon with heartbeat_every 1s GETs the URL at start, then again a second on."""
    async with ping_server("/ping/0f1e2d3c") as (base, pings):
        url = f"{base}/ping/0f1e2d3c?rid=1"
        config = make_config(daemon_extra=f", heartbeat_url: '{url}', heartbeat_every: 1s")
        assert config.daemon.database is None and config.daemon.heartbeat_every == 1.0
        await running(config)
        await until(lambda: len(pings) >= 1)
        assert pings == ["GET /ping/0f1e2d3c?rid=1"]  # the first at start, not after a period
        await until(lambda: len(pings) >= 2, timeout_s=5)
        assert set(pings) == {"GET /ping/0f1e2d3c?rid=1"}


async def test_an_instance_cut_off_from_its_database_stops_pinging_until_it_is_back(
    make_config: ConfigFactory,
    running: Callable[[Config], Awaitable[Daemon]],
    quiet_logs: None,
) -> None:
    """On PostgreSQL, pings stop while the lease cannot be renewed and resume once it can."""
    with running_postgres() as server:
        async with ping_server("/ping") as (base, pings):
            extra = (
                f", database: '{server.dsn}', lease_period: 500ms,"
                f" heartbeat_url: '{base}/ping', heartbeat_every: 1s"
            )
            daemon = await running(make_config(daemon_extra=extra))
            node = daemon.node
            assert node is not None
            await until(lambda: pings)
            server.stop("fast")  # immediate may lose recent commits: fsync is off
            await until(lambda: not node.connected, timeout_s=10)
            cut_off = len(pings)  # at most one ping was already on its way
            await holds(lambda: len(pings) <= cut_off + 1, for_s=2.5)
            server.start()
            await until(lambda: node.connected, timeout_s=20)
            await until(lambda: len(pings) > cut_off + 1, timeout_s=5)
            assert set(pings) == {"GET /ping"}
