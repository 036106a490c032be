"""Listening sockets that a crowd of clients cannot turn into a cost for probing.

Each listener admits a bounded number of connections, in all and per client address, and
closes the rest at once (``ConnectionLimits``, from ``fdlimit.split``). aiohttp's keep-alive
timer also runs from the moment a connection is accepted until a request head is complete,
so ``header_timeout`` closes both an idle connection and one that drips a header. Refusals
and accept failures are logged once per episode, not once per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any, cast

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from monitor.runtime.fdlimit import ConnectionLimits
from monitor.runtime.metrics import Metrics
from monitor.web.app import LINGER_S, SECURITY_HEADERS, SERVER
from monitor.web.auth import client_key

log = structlog.get_logger("forewarn.web.listeners")

EPISODE_S = 10.0  # a quiet spell this long ends an episode; the next event logs again
BACKLOG = 128
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

Networks = tuple[IPv4Network | IPv6Network, ...]


class Episodes:
    """Logs the first of a burst of like events, then only how many followed."""

    def __init__(self, event: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.event = event
        self.clock = clock
        self.last = -EPISODE_S
        self.quiet = 0  # events since the last one logged

    def note(self, **fields: Any) -> None:
        """Count one event; log it when it starts a new episode."""
        now = self.clock()
        if now - self.last >= EPISODE_S:
            log.warning(self.event, suppressed_before=self.quiet, **fields)
            self.quiet = 0
        else:
            self.quiet += 1
        self.last = now


def is_trusted(address: str | None, proxies: Networks) -> bool:
    """True when ``address`` is in one of the trusted proxies' networks."""
    try:
        parsed = ip_address(address or "")
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


class Guard:
    """Admits connections to one listener while its limits allow, and counts them."""

    def __init__(
        self, name: str, limits: ConnectionLimits, metrics: Metrics, proxies: Networks = ()
    ) -> None:
        self.name = name
        self.limits = limits
        self.metrics = metrics
        self.proxies = proxies
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.refusals = Episodes("connections_refused")
        self.bad_requests = Episodes("bad_requests")

    def admit(self, address: str) -> bool:
        """Take a place for a connection from ``address``; False when it must be closed.

        Addresses are counted as the API throttles them: an IPv6 client by its /64, which one
        host usually owns whole, so that it cannot take a new address per connection.
        """
        limit = ""
        key = client_key(address)
        if self.open >= self.limits.total:
            limit = "total"
        elif self.by_address[key] >= self.limits.per_address and not is_trusted(
            address, self.proxies
        ):
            limit = "per_address"
        if limit:
            self.metrics.connections_refused.labels(self.name, limit).inc()
            self.refusals.note(listener=self.name, limit=limit, open=self.open)
            return False
        self.open += 1
        self.by_address[key] += 1
        self.metrics.connections.labels(self.name).set(self.open)
        return True

    def release(self, address: str) -> None:
        """Give back the place of a connection that ended."""
        self.open -= 1
        key = client_key(address)
        self.by_address[key] -= 1
        if self.by_address[key] <= 0:
            del self.by_address[key]
        self.metrics.connections.labels(self.name).set(self.open)


class _Handler(RequestHandler):
    """aiohttp's connection handler, with our headers on the errors its parser answers.

    A request aiohttp cannot parse is answered by ``handle_error`` before any middleware or
    signal runs: without this, it named aiohttp's version and lacked the security headers,
    and each one logged a traceback, which a client could repeat at will.
    """

    bad_requests: Episodes  # set by the listener: its episodes of unparsable requests

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        response.headers["Server"] = SERVER
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        error = kw.get("exc_info")
        if isinstance(error, HttpProcessingError):
            self.bad_requests.note(error=type(error).__name__)  # the client's fault: no trace
            return
        super().log_exception(*args, **kw)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for an admitted connection; a refused one is aborted unread."""

    def __init__(self, guard: Guard, make: Callable[[], RequestHandler]) -> None:
        self.guard = guard
        self.make = make
        self.inner: asyncio.Protocol | None = None
        self.address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "unix"
        if not self.guard.admit(self.address):
            # No isinstance check: uvloop's transports are not asyncio.Transport subclasses,
            # and an assertion here turned each refusal into a logged traceback and a FIN.
            sock = transport.get_extra_info("socket")
            if sock is not None:  # a reset: no FIN_WAIT/TIME_WAIT kept for a refusal
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            # The descriptor is freed now, not when the client gives up.
            cast(asyncio.Transport, transport).abort()
            return
        self.inner = self.make()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.inner is None else self.inner.eof_received()

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None:
            self.guard.release(self.address)
            self.inner.connection_lost(exc)
            self.inner = None


class Listener:
    """One app served on one address behind a ``Guard``."""

    def __init__(self, app: web.Application, guard: Guard, header_timeout: float) -> None:
        self.guard = guard
        self.runner = web.AppRunner(app, access_log=None)
        self.header_timeout = header_timeout
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Bind and start accepting."""
        await self.runner.setup()
        handlers = self.runner.server
        assert handlers is not None
        guard = self.guard
        loop = asyncio.get_running_loop()

        def make() -> RequestHandler:
            handler = _Handler(
                handlers,
                loop=loop,
                # aiohttp's keep-alive timer also bounds the wait for a first request head.
                keepalive_timeout=self.header_timeout,
                access_log=None,  # type: ignore[arg-type]  # as AppRunner(access_log=None)
                lingering_time=LINGER_S,
            )
            handler.bad_requests = guard.bad_requests
            return handler

        self.server = await loop.create_server(
            lambda: _Guarded(guard, make),
            host or None,
            port,
            backlog=BACKLOG,
            reuse_address=True,
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, then close the connections and the app."""
        if self.server is not None:
            self.server.close()
        await self.runner.cleanup()


def install_accept_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Log accept failures for lack of descriptors once per episode, not with a traceback each.

    asyncio retries an accept that failed with EMFILE a moment later and reports each failure
    to the loop's exception handler: 63,000 tracebacks (25 MB) in 20 s under a crowd.
    """
    episodes = Episodes("accept_failed")

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in _OUT_OF_RESOURCES:
            episodes.note(error=errno.errorcode.get(error.errno or 0, "?"))
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
