"""A running daemon pings daemon.heartbeat_url (its dead-man's switch) at heartbeat_every."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from monitor.config.load import Config
from monitor.daemon import Daemon
from tests.conftest import ConfigFactory
from tests.probe_servers import serve
from tests.waiting import until


async def test_a_daemon_pings_its_heartbeat_url_every_heartbeat_every(
    make_config: ConfigFactory,
    running: Callable[[Config], Awaitable[Daemon]],
    quiet_logs: None,
) -> None:
    """A SQLite daemon with heartbeat_every 1s GETs the URL at start, then again a second on."""
    pings: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        pings.append(f"{request.method} {request.path_qs}")
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/ping/0f1e2d3c", ping)
    async with serve(app) as base:
        url = f"{base}/ping/0f1e2d3c?rid=1"
        config = make_config(daemon_extra=f", heartbeat_url: '{url}', heartbeat_every: 1s")
        assert config.daemon.database is None and config.daemon.heartbeat_every == 1.0
        await running(config)
        await until(lambda: len(pings) >= 1)
        assert pings == ["GET /ping/0f1e2d3c?rid=1"]  # the first at start, not after a period
        await until(lambda: len(pings) >= 2, timeout_s=5)
        assert set(pings) == {"GET /ping/0f1e2d3c?rid=1"}
