"""The client the http, soap and transaction probes share: a request's hops, fresh
connections (resolved, TLS-verified, timed), redirects, and a reply whose body is capped."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from time import perf_counter

from multidict import CIMultiDictProxy
from yarl import URL

from monitor.probes.base import Reason
from monitor.probes.certs import peer_not_after, verifying_context
from monitor.probes.http1 import Answer, Head, ProbeFailure, request_bytes
from monitor.probes.httpbody import Framing, decoder, framing
from monitor.probes.outcome import Timeline, connect_failure, resolve_failure
from monitor.probes.resolver import Resolver, chosen
from monitor.probes.sockets import addresses

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as a probe sends it; its first hop is built once, with it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: str | bytes | None = None
    follow_redirects: bool = True
    max_redirects: int = 5
    ca_file: str | None = None
    first: Hop = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        first = hop(self.method, URL(self.url), self.headers, self.payload())
        object.__setattr__(self, "first", first)

    def payload(self) -> bytes | None:
        """The body as bytes."""
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass(frozen=True, slots=True)
class Hop:
    """Where one request of a run goes, and its bytes: plain values, ~0.2 KB a check."""

    tls: bool
    host: str
    port: int
    wire: bytes


def hop(method: str, url: URL, headers: Mapping[str, str], body: bytes | None) -> Hop:
    """The hop sending ``method`` to ``url``; host names are shared between checks."""
    host = sys.intern(url.raw_host or "")
    wire = request_bytes(method, url, headers, body)
    return Hop(url.scheme == "https", host, url.port or 0, wire)


class Reply:
    """An answer whose head is in; the body is read only when asked, and capped."""

    def __init__(self, head: Head, answer: Answer, method: str, line: Timeline) -> None:
        self.status = head.status
        self.headers: CIMultiDictProxy[str] = head.headers
        self.charset = charset(head.headers.get("Content-Type", ""))
        self._head = head
        self._answer = answer
        self._method = method
        self._line = line
        self._frame: Framing | None = None  # read from the head when first needed

    def _framing(self) -> Framing:
        # Not in __init__: a bent Content-Length must not hide a wrong status judged first.
        if self._frame is None:
            self._frame = framing(self._method, self._head)
        return self._frame

    @property
    def content_length(self) -> int | None:
        """The declared body length, if any."""
        return self._framing().left

    async def read(self, cap: int) -> bytes:
        """The (decompressed) body; too_large as soon as it exceeds ``cap`` bytes."""
        frame = self._framing()
        coding = decoder(self._head)
        declared = frame.left
        if declared is not None and declared > cap and coding is None:
            raise ProbeFailure(Reason.TOO_LARGE, f"body of {declared} bytes above {cap}")
        chunks: list[bytes] = []
        size = 0
        while not frame.done:
            raw = await self._answer.chunk()
            if not raw:
                frame.finish()
                break
            data = frame.feed(raw)
            if coding is not None:
                # One byte past the cap is how an over-long body is told from a full one.
                data = coding.feed(data, cap - size + 1)
            size += len(data)
            if size > cap:
                raise ProbeFailure(Reason.TOO_LARGE, f"body larger than {cap} bytes")
            chunks.append(data)
        self._line.body_end = perf_counter()
        return b"".join(chunks)

    def text(self, body: bytes) -> str:
        """Decode leniently: a stray byte must not hide the text being looked for."""
        try:
            return body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return body.decode("utf-8", errors="replace")


def charset(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type value, if any."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


class HttpClient:
    """Fresh connections over HTTP/1.1, a resolver, and TLS contexts per CA bundle."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        """Create the client; nothing is opened before the first request.

        ``resolver`` turns host names into addresses; None is the system's (getaddrinfo), of
        this client's own, closed with it.
        """
        self._resolver, self._owned = chosen(resolver)
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    def _ssl(self, tls: bool, ca_file: str | None) -> ssl.SSLContext | None:
        if not tls:
            return None
        context = self._contexts.get(ca_file)
        if context is None:
            context = self._contexts[ca_file] = verifying_context(ca_file)
        return context

    @contextlib.asynccontextmanager
    async def send(self, request: Request, line: Timeline) -> AsyncIterator[Reply]:
        """Send ``request``, following redirects; yield the reply while its connection is open."""
        where, method, body = request.first, request.method, request.payload()
        url = origin = None  # parsed only when redirected
        for hops in range(request.max_redirects + 1):
            context = self._ssl(where.tls, request.ca_file)
            transport, answer = await self._connect(where, context, line)
            try:
                transport.write(where.wire)
                head = await answer.head()
                line.headers_at = perf_counter()
                location = head.headers.get("Location")
                if not (request.follow_redirects and head.status in _REDIRECTS and location):
                    if context is not None:
                        ssl_object = transport.get_extra_info("ssl_object")
                        line.cert_not_after = peer_not_after(ssl_object)
                    yield Reply(head, answer, method, line)
                    return
                if hops == request.max_redirects:
                    detail = (
                        f"redirect loop: still redirected ({head.status}) after {hops} redirects"
                    )
                    raise ProbeFailure(Reason.HTTP_STATUS, detail)
            finally:
                transport.close()
            if url is None or origin is None:
                url = URL(request.url)
                origin = url.origin()
            url = redirected(url, location)
            if head.status == 303 and method != "HEAD":
                method, body = "GET", None  # see other: fetch it
            elif head.status in (301, 302) and method == "POST":
                method, body = "GET", None  # as browsers (and aiohttp) do
            # A check's own headers (and the URL's login) stay with the origin they were
            # written for (issue 17); a hop back to it carries them again.
            if url.origin() == origin:
                where = hop(method, url, request.headers, body)
            else:
                where = hop(method, url.with_user(None), {}, body)

    async def _connect(
        self, where: Hop, context: ssl.SSLContext | None, line: Timeline
    ) -> tuple[asyncio.Transport, Answer]:
        host, port = where.host, where.port
        phases: dict[str, float] = {}
        line.dns_start = perf_counter()  # left set if the deadline strikes while resolving
        try:
            targets = await addresses(self._resolver, host, port, phases)
        except OSError as exc:
            raise ProbeFailure(*resolve_failure(exc, host)) from None
        line.dns_start = None
        if "resolve" in phases:  # an address literal is not resolved: no phase
            line.resolve = (line.resolve or 0.0) + phases["resolve"]
        if not targets:
            raise ProbeFailure(Reason.DNS, f"cannot resolve {host}: no address")
        loop = asyncio.get_running_loop()
        line.conn_start = perf_counter()
        error: OSError | None = None
        for family, address in targets:  # in the resolver's order, the next when one fails
            try:
                transport, answer = await loop.create_connection(
                    lambda: Answer(loop),
                    address,
                    port,
                    family=family,
                    ssl=context,
                    server_hostname=host if context else None,
                )
            except OSError as exc:
                error = exc
                continue
            now = perf_counter()
            line.connect = (line.connect or 0.0) + now - line.conn_start
            line.conn_start, line.ready = None, now
            return transport, answer
        assert error is not None
        raise ProbeFailure(*connect_failure(error, f"{host}:{port}"))

    async def close(self) -> None:
        """Stop the resolver's threads, if the resolver is this client's own."""
        if self._owned is not None:
            await self._owned.close()


def redirected(url: URL, location: str) -> URL:
    """Where a redirect leads; refuses what an HTTP client cannot follow."""
    try:
        target = url.join(URL(location))
    except ValueError:
        raise ProbeFailure(Reason.PROTOCOL, "redirected to an invalid URL") from None
    if target.scheme not in ("http", "https") or not target.raw_host:
        raise ProbeFailure(Reason.PROTOCOL, "redirected to a URL that is not http(s)")
    return target.with_fragment(None)
