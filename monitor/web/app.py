"""aiohttp wiring: /metrics and /healthz, with bounded request bodies and safe headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.probes.heartbeat import HeartbeatBook
from monitor.runtime.metrics import Metrics
from monitor.web.hooks import add_hook_routes

Health = Callable[[], dict[str, Any]]
MAX_BODY = 64 * 1024
# After a 413, how long the unread rest of a body is drained so that the client can read the
# answer. aiohttp's default of 10 s let one client that stops sending hold a handler (and
# delay the daemon's stop) for 10 s; on the networks the API is reached from, 1 s is plenty.
LINGER_S = 1.0

HEALTH_KEY: web.AppKey[Health] = web.AppKey("health")


class Exposition:
    """The daemon's registry rendered for /metrics, one rendering at a time.

    A rendering holds the GIL for about a second at 10,000 checks (7.6 s at 60,000): scrapes
    arriving meanwhile share it instead of each starting one, so however many clients scrape
    at once, the probes compete with one rendering, not with dozens.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._registry = metrics.registry
        self._rendering: asyncio.Future[bytes] | None = None

    async def body(self) -> bytes:
        """The exposition: the rendering under way, or a fresh one."""
        if self._rendering is None or self._rendering.done():
            render = asyncio.to_thread(generate_latest, self._registry)
            self._rendering = asyncio.ensure_future(render)
        # Shielded: a client that gives up does not cancel what the others wait for.
        return await asyncio.shield(self._rendering)


EXPOSITION_KEY: web.AppKey[Exposition] = web.AppKey("exposition")


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}
SERVER = "forewarn"  # no version: it only helps someone matching known flaws


def _secure(headers: MutableMapping[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Add headers that keep browsers from sniffing, framing or leaking referrers.

    Raised errors (404, 405, 401, 413, …) get them too: they are responses like any other.
    """
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc.headers)
        raise
    _secure(response.headers)
    return response


async def _scrub_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The last word on every response's headers: security headers, and no versions."""
    _secure(response.headers)
    response.headers["Server"] = SERVER


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus exposition of the daemon's own registry, rendered in a worker thread.

    Thousands of checks take a second or more to render; off the loop, the GIL's switch
    interval lets probes run in between instead of all waiting.
    """
    body = await request.app[EXPOSITION_KEY].body()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz_handler(request: web.Request) -> web.Response:
    """Liveness and a short summary; 503 when the daemon says it is not healthy."""
    health = request.app[HEALTH_KEY]()
    status = 200 if health.get("status") == "ok" else 503
    return web.json_response(health, status=status)


def new_app() -> web.Application:
    """An aiohttp application with the daemon's body limit and headers, and no routes."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[security_headers],
        handler_args={"lingering_time": LINGER_S},
    )
    app.on_response_prepare.append(_scrub_headers)
    return app


def build_app(
    metrics: Metrics, health: Health, heartbeats: HeartbeatBook | None = None
) -> web.Application:
    """An application serving /metrics, /healthz and (given ``heartbeats``) the hooks."""
    app = new_app()
    add_admin_routes(app, metrics, health, heartbeats)
    return app


def add_admin_routes(
    app: web.Application, metrics: Metrics, health: Health, heartbeats: HeartbeatBook | None
) -> None:
    """/metrics, /healthz and the heartbeat hooks: the daemon's own face, not the public's."""
    app[EXPOSITION_KEY] = Exposition(metrics)
    app[HEALTH_KEY] = health
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz_handler)
    if heartbeats is not None:
        add_hook_routes(app, heartbeats)
