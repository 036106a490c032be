"""``/logo-<hash>.<png|jpg|svg>``: the company's logo, read with the config, cached for good."""

from __future__ import annotations

from aiohttp import web

from monitor.config.statuspage import SVG
from monitor.web.caching import BOARD_KEY, respond

# An SVG is a document that could carry scripts: opened on its own, it may run none, load
# nothing and is sandboxed (an <img> never runs them anyway). Its own inline styles may apply.
SVG_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'none'; "
    "frame-ancestors 'none'; sandbox"
)
FOREVER_S = 365 * 86400  # its name is a hash of its bytes: a new logo is a new URL


async def logo(request: web.Request) -> web.Response:
    """The configured logo under its current hashed name; 404 for any other name."""
    found = request.app[BOARD_KEY].logo()
    if found is None or request.match_info["name"] != found.name:
        raise web.HTTPNotFound
    response = respond(request, found.body, found.media_type, 0, cors=False)
    response.headers["Cache-Control"] = f"public, max-age={FOREVER_S}, immutable"
    del response.headers["Vary"]  # the same bytes for every language
    if found.media_type == SVG:
        response.headers["Content-Security-Policy"] = SVG_POLICY
    return response


def add_logo_route(app: web.Application) -> None:
    """Serve the logo on ``app``; the board must be set under ``caching.BOARD_KEY``."""
    app.router.add_get(r"/{name:logo-[0-9a-f]{16}\.(?:png|jpg|svg)}", logo)
