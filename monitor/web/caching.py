"""Cheap polling for public documents: a strong ETag, Last-Modified, and 304 Not Modified."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web

from monitor.core.timebounds import clamp
from monitor.status.board import Snapshot
from monitor.status.source import StatusBoard

BOARD_KEY: web.AppKey[StatusBoard] = web.AppKey("status_board", StatusBoard)
MAX_AGE_S = 30  # how long browsers and proxies may reuse a public document unasked


def snapshot(request: web.Request) -> Snapshot:
    """The public snapshot for this request."""
    return request.app[BOARD_KEY].snapshot()


def rendered(
    request: web.Request, snap: Snapshot, variant: Hashable, make: Callable[[], bytes]
) -> bytes:
    """The document at this path in ``variant`` (its language, …), rendered once per snapshot.

    The key is the path and what the handler made of the request, never the raw query
    string: a client adding ``?w=1``, ``?w=2``, … must not make each request a render.
    """
    return request.app[BOARD_KEY].rendered(snap, (request.path, variant), make)


def etag_of(body: bytes) -> str:
    """A strong validator for a representation: a hash of its bytes."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _not_modified(request: web.Request, etag: str, modified: int) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        parsed = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False  # an unreadable date is ignored, as the RFC says
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return modified <= parsed.timestamp()


def respond(
    request: web.Request,
    body: bytes,
    content_type: str,
    modified: float,
    *,
    cors: bool = True,
) -> web.Response:
    """``body`` with its validators, or a bodiless 304 when the client's copy is current.

    ``cors`` lets other sites (a shop's help page) fetch the document from their scripts;
    public documents carry nothing that needs the same-origin policy's protection.
    """
    etag, seconds = etag_of(body), int(clamp(modified))
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(datetime.fromtimestamp(seconds, UTC), usegmt=True),
        "Cache-Control": f"public, max-age={MAX_AGE_S}",
        "Vary": "Accept-Language",
    }
    if cors:
        headers["Access-Control-Allow-Origin"] = "*"
    if _not_modified(request, etag, seconds):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})
