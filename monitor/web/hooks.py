"""Heartbeat hooks: ``POST /heartbeat/{token}`` records a ping, ``…/fail`` a failure.

Tokens are secrets: compared in constant time against every heartbeat check's token, never
logged (the daemon's runner has no access log), and an unknown one gets the same 404
whatever it looks like.
"""

from __future__ import annotations

from aiohttp import web

from monitor.probes.heartbeat import HeartbeatBook

HEARTBEATS_KEY: web.AppKey[HeartbeatBook] = web.AppKey("heartbeats", HeartbeatBook)


def _checks(request: web.Request) -> list[str]:
    checks = request.app[HEARTBEATS_KEY].match(request.match_info["token"])
    if not checks:
        raise web.HTTPNotFound(text="unknown heartbeat\n")
    return checks


async def ping_handler(request: web.Request) -> web.Response:
    """The job ran well."""
    book = request.app[HEARTBEATS_KEY]
    for check_id in _checks(request):
        book.ping(check_id)
    return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})


async def fail_handler(request: web.Request) -> web.Response:
    """The job reports a failure: its check fails on its next run, without waiting."""
    book = request.app[HEARTBEATS_KEY]
    for check_id in _checks(request):
        book.fail(check_id)
    return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})


def add_hook_routes(app: web.Application, heartbeats: HeartbeatBook) -> None:
    """Serve the heartbeat hooks of ``heartbeats`` on ``app``."""
    app[HEARTBEATS_KEY] = heartbeats
    app.router.add_post("/heartbeat/{token}", ping_handler)
    app.router.add_post("/heartbeat/{token}/fail", fail_handler)
