"""What the http, soap and transaction probes share: one session, timed phases, bounded
bodies, one deadline per run, and client errors mapped to reasons."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter
from typing import TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.helpers import is_ip_address
from aiohttp.http_exceptions import LineTooLong
from aiohttp.tracing import Trace
from multidict import CIMultiDictProxy

from monitor.probes.base import Reason
from monitor.probes.certs import peer_not_after, verifying_context
from monitor.probes.local import local_failure
from monitor.probes.redirects import same_origin_headers
from monitor.probes.resolver import chosen

_USER_AGENT = "forewarn (synthetic monitoring)"
_CHUNK = 64 * 1024
_DETAIL_LIMIT = 200

_E = TypeVar("_E", bound=BaseException)

Verdict = tuple[Reason | None, str]
"""What a run concluded: no reason when healthy, and a one-line detail."""


class ProbeFailure(Exception):
    """Raised inside a run to stop it with a reason and a detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Timeline:
    """Marks of one run, written by the connector and the client; perf_counter seconds."""

    dns_start: float | None = None  # set only while a resolution is in flight
    conn_start: float | None = None  # set only while a connection is being made
    conn_resolve: float = 0.0  # resolve total when that connection started
    resolve: float | None = None
    connect: float | None = None
    ready: float | None = None  # when the last connection became usable
    headers_at: float | None = None
    body_end: float | None = None
    cert_not_after: float | None = None  # the https peer's certificate expiry, UNIX time

    def phases(self) -> dict[str, float]:
        """The phases that actually happened, in seconds."""
        out: dict[str, float] = {}
        if self.resolve is not None:
            out["resolve"] = self.resolve
        if self.connect is not None:
            out["connect"] = self.connect  # includes the TLS handshake for https
        if self.headers_at is not None and self.ready is not None:
            out["processing"] = max(0.0, self.headers_at - self.ready)
        if self.body_end is not None and self.headers_at is not None:
            out["transfer"] = self.body_end - self.headers_at
        return out


# The connector keeps sums, so redirects that open several connections add up instead of
# overwriting each other; resolution happens inside connection creation and is subtracted.
# It finds the run's Timeline in a context variable: each probe runs in a task of its own.
# aiohttp's trace hooks did the same at the price of a Trace object and eight coroutine
# calls per request.
_LINE: ContextVar[Timeline | None] = ContextVar("forewarn_timeline", default=None)


class _TimedConnector(aiohttp.TCPConnector):
    """A connector that times resolution and connection into the running probe's Timeline."""

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Trace] | None = None
    ) -> list[ResolveResult]:
        line = _LINE.get()
        if line is None or is_ip_address(host):  # an address is not resolved: no phase
            return await super()._resolve_host(host, port, traces)
        line.dns_start = perf_counter()
        hosts = await super()._resolve_host(host, port, traces)
        line.resolve = (line.resolve or 0.0) + perf_counter() - line.dns_start
        line.dns_start = None
        return hosts

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's own signature
    ) -> ResponseHandler:
        line = _LINE.get()
        if line is None:
            return await super()._create_connection(req, traces, timeout)
        line.conn_start = perf_counter()
        line.conn_resolve = line.resolve or 0.0
        proto = await super()._create_connection(req, traces, timeout)
        now = perf_counter()
        resolving = (line.resolve or 0.0) - line.conn_resolve
        line.connect = (line.connect or 0.0) + now - line.conn_start - resolving
        line.conn_start = None
        line.ready = now
        return proto


class _CertResponse(aiohttp.ClientResponse):
    """A response that notes the peer certificate's expiry while its connection is open.

    A small body is read with the headers, and the connection released at once, so the
    TLS object can only be seen here, as the response starts.
    """

    cert_not_after: float | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        """Read the certificate, then the status line and headers."""
        transport = connection.transport
        if transport is not None:
            self.cert_not_after = peer_not_after(transport.get_extra_info("ssl_object"))
        return await super().start(connection)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as a probe sends it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: str | bytes | None = None
    follow_redirects: bool = True
    max_redirects: int = 5
    ca_file: str | None = None


class Reply:
    """An answer whose headers are in; the body is read only when asked, and capped."""

    def __init__(self, resp: aiohttp.ClientResponse, line: Timeline) -> None:
        self.status = resp.status
        self.headers: CIMultiDictProxy[str] = resp.headers
        self.charset = resp.charset
        self.content_length = resp.content_length
        self._resp = resp
        self._line = line

    async def read(self, cap: int) -> bytes:
        """The (decompressed) body; too_large as soon as it exceeds ``cap`` bytes."""
        declared = self.content_length
        if declared is not None and declared > cap and not self.headers.get("Content-Encoding"):
            raise ProbeFailure(Reason.TOO_LARGE, f"body of {declared} bytes above {cap}")
        chunks: list[bytes] = []
        size = 0
        stream = self._resp.content
        while True:
            # Asking for one byte past the cap is how an over-long body is told from a full one.
            chunk = await stream.read(min(_CHUNK, cap - size + 1))
            if not chunk:
                self._line.body_end = perf_counter()
                return b"".join(chunks)
            size += len(chunk)
            if size > cap:
                raise ProbeFailure(Reason.TOO_LARGE, f"body larger than {cap} bytes")
            chunks.append(chunk)

    def text(self, body: bytes) -> str:
        """Decode leniently: a stray byte must not hide the text being looked for."""
        try:
            return body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return body.decode("utf-8", errors="replace")


class HttpClient:
    """One shared session (opened inside the loop on first use) and TLS contexts per CA."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        """Create the client; nothing is opened before the first request.

        ``resolver`` turns host names into addresses; None is the system's (getaddrinfo), of
        this client's own, closed with it.
        """
        self._resolver, self._owned = chosen(resolver)
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = _TimedConnector(
            resolver=self._resolver,  # a resolver passed in is not closed with the session
            force_close=True,  # a fresh connection per probe measures what a new client sees
            limit=0,
            limit_per_host=0,
            # Resolve on every probe: a DNS outage must show, and "resolve" be measured.
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            # One deadline per run bounds every phase; aiohttp's own timers would only add
            # handles to the loop and round long deadlines up to whole seconds.
            timeout=aiohttp.ClientTimeout(),
            headers={"User-Agent": _USER_AGENT},
            response_class=_CertResponse,
        )
        return self._session

    def _ssl(self, ca_file: str | None) -> ssl.SSLContext | bool:
        if ca_file is None:
            return True  # aiohttp's default verifying context
        context = self._contexts.get(ca_file)
        if context is None:
            context = self._contexts[ca_file] = verifying_context(ca_file)
        return context

    @contextlib.asynccontextmanager
    async def send(self, request: Request, line: Timeline) -> AsyncIterator[Reply]:
        """Send ``request``; yield its reply while the connection is still open."""
        session = self._session or self._open()
        token = _LINE.set(line)
        try:
            async with session.request(
                request.method,
                request.url,
                headers=dict(request.headers) if request.headers else None,
                data=request.body,
                allow_redirects=request.follow_redirects,
                max_redirects=request.max_redirects,
                # Without headers of the check's own there is nothing to keep from another
                # origin: no middleware, and no URL parsed for it on every run.
                middlewares=(
                    (same_origin_headers(request.url, request.headers),) if request.headers else ()
                ),
                ssl=self._ssl(request.ca_file),
            ) as resp:
                line.headers_at = perf_counter()
                if isinstance(resp, _CertResponse) and resp.cert_not_after is not None:
                    line.cert_not_after = resp.cert_not_after
                yield Reply(resp, line)
        finally:
            _LINE.reset(token)

    async def close(self) -> None:
        """Close the shared session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._owned is not None:
            await self._owned.close()


async def attempt(
    work: Callable[[], Awaitable[Verdict]], line: Timeline, deadline: float, limit: float
) -> Verdict:
    """Run ``work`` until the loop-time ``deadline``; map whatever stops it to a reason."""
    try:
        async with asyncio.timeout_at(deadline):
            return await work()
    except TimeoutError:
        return timed_out(line, limit)
    except ProbeFailure as failure:
        return failure.reason, failure.detail
    except (aiohttp.ClientError, OSError) as exc:
        return client_failure(exc)
    except Exception as exc:  # a bug guard: run() must never raise for a target
        return Reason.PROTOCOL, f"unexpected {type(exc).__name__}"


def timed_out(line: Timeline, timeout: float) -> Verdict:
    """Name the phase the deadline caught the request in."""
    limit = seconds(timeout)
    if line.dns_start is not None:
        return Reason.DNS, f"no DNS answer within {limit}"
    if line.conn_start is not None or line.ready is None:
        return Reason.CONNECT_TIMEOUT, f"not connected within {limit}"
    if line.headers_at is None or line.headers_at < line.ready:
        return Reason.TIMEOUT, f"no response within {limit}"
    return Reason.TIMEOUT, f"body not complete within {limit}"


def client_failure(exc: BaseException) -> Verdict:
    """Map a client error to a reason; the detail never repeats the URL or headers."""
    resolving = isinstance(exc, aiohttp.ClientConnectorDNSError | socket.gaierror)
    local = local_failure(exc, resolving=resolving)
    if local is not None:  # our own exhaustion, not the target's doing
        return local
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Reason.DNS, f"cannot resolve {exc.host}: {exc.os_error.strerror}"
    if isinstance(exc, socket.gaierror):
        return Reason.DNS, f"cannot resolve: {exc.strerror}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        why = getattr(cert, "verify_message", None) or type(cert).__name__
        return Reason.TLS, short(f"certificate rejected by {exc.host}:{exc.port}: {why}")
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        inner = exc.os_error
        why = getattr(inner, "reason", None) or _os_why(inner)
        return Reason.TLS, short(f"TLS handshake with {exc.host}:{exc.port} failed: {why}")
    if isinstance(exc, ssl.SSLError):
        return Reason.TLS, short(f"TLS failure: {exc.reason or _os_why(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        if isinstance(exc.os_error, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
            return Reason.CONNECT_REFUSED, f"connection refused by {where}"
        return Reason.CONNECT_ERROR, short(f"cannot connect to {where}: {_os_why(exc)}")
    if isinstance(exc, aiohttp.InvalidURL):
        return Reason.PROTOCOL, "invalid URL"  # its text is the URL, which may hold a token
    if isinstance(exc, aiohttp.TooManyRedirects):
        hops, last = len(exc.history), exc.history[-1].status if exc.history else exc.status
        detail = f"redirect loop: still redirected ({last}) after {hops} redirects"
        return Reason.HTTP_STATUS, detail
    too_long = _cause(exc, LineTooLong)
    if too_long is not None:  # its text quotes the line, which may hold a cookie: never shown
        return Reason.PROTOCOL, f"status or header line longer than {too_long.args[1]} bytes"
    if isinstance(exc, aiohttp.ClientResponseError):
        return Reason.PROTOCOL, short(f"{type(exc).__name__}: {exc.message or exc.status}")
    if isinstance(exc, OSError):
        return Reason.CONNECT_ERROR, short(f"connection error: {_os_why(exc)}")
    return Reason.PROTOCOL, short(f"{type(exc).__name__}: {exc}")


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of ``kind`` in the chain of causes of ``exc``, if any."""
    seen: BaseException | None = exc
    for _ in range(8):  # a few links deep: aiohttp re-raises parser errors twice
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__
    return None


def _os_why(exc: OSError) -> str:
    """The operating system's words for an error, without aiohttp's URL-bearing prefix."""
    return exc.strerror or str(exc) or type(exc).__name__


def short(text: str) -> str:
    """One line, at most ~200 characters."""
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_LIMIT else line[: _DETAIL_LIMIT - 1] + "…"


def seconds(value: float) -> str:
    """``2s`` or ``50ms``, the way durations are written in checks.yaml."""
    return f"{value:g}s" if value >= 1 else f"{value * 1000:g}ms"
