"""HTTP(S) probe: one fresh connection per run, bounded body, per-phase timeouts."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import ssl
from dataclasses import dataclass
from time import perf_counter
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import aiohttp
from pydantic import Field, field_validator

from monitor.config_types import CheckBase, Duration, StrictModel
from monitor.probes.base import ProbeKind, ProbeResult, Reason
from monitor.probes.jsonpath import json_equal, lookup, parse_path, show

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_USER_AGENT = "forewarn (synthetic monitoring)"
_CHUNK = 64 * 1024
# A body no expectation needs is still drained when declared this small, so "transfer" is
# measured for ordinary pages without paying for large downloads nobody looks at.
_DRAIN_LIMIT = 64 * 1024
_DETAIL_LIMIT = 200


class HttpExpect(StrictModel):
    """What a healthy HTTP answer looks like."""

    status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200])
    max_latency: Duration | None = None
    body_contains: str | None = None
    json_: dict[str, Any] = Field(default_factory=dict, alias="json")

    @field_validator("json_")
    @classmethod
    def _valid_paths(cls, expected: dict[str, Any]) -> dict[str, Any]:
        for path in expected:
            parse_path(path)
        return expected


class HttpCheck(CheckBase):
    """Settings of an ``http`` check."""

    type: Literal["http"]
    url: str
    method: HttpMethod = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    max_body: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 1024 * 1024
    expect: HttpExpect = HttpExpect()

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url


@dataclass(slots=True)
class _Timeline:
    """Marks of one request, written by the trace hooks; perf_counter seconds."""

    dns_start: float | None = None  # set only while a resolution is in flight
    conn_start: float | None = None  # set only while a connection is being made
    conn_resolve: float = 0.0  # resolve total when that connection started
    resolve: float | None = None
    connect: float | None = None
    ready: float | None = None  # when the last connection became usable
    headers_at: float | None = None
    body_end: float | None = None

    def phases(self) -> dict[str, float]:
        """The phases that actually happened, in seconds."""
        out: dict[str, float] = {}
        if self.resolve is not None:
            out["resolve"] = self.resolve
        if self.connect is not None:
            out["connect"] = self.connect  # includes the TLS handshake for https
        if self.headers_at is not None and self.ready is not None:
            out["processing"] = self.headers_at - self.ready
        if self.body_end is not None and self.headers_at is not None:
            out["transfer"] = self.body_end - self.headers_at
        return out


# The hooks keep sums, so redirects that open several connections add up instead of
# overwriting each other; resolution happens inside connection creation and is subtracted.
async def _dns_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.dns_start = perf_counter()


async def _dns_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    line: _Timeline = ctx.trace_request_ctx
    if line.dns_start is not None:
        line.resolve = (line.resolve or 0.0) + perf_counter() - line.dns_start
        line.dns_start = None


async def _conn_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    line: _Timeline = ctx.trace_request_ctx
    line.conn_start = perf_counter()
    line.conn_resolve = line.resolve or 0.0


async def _conn_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
    line: _Timeline = ctx.trace_request_ctx
    now = perf_counter()
    if line.conn_start is not None:
        resolving = (line.resolve or 0.0) - line.conn_resolve
        line.connect = (line.connect or 0.0) + now - line.conn_start - resolving
        line.conn_start = None
    line.ready = now


def _trace_config() -> aiohttp.TraceConfig:
    """Hooks that time resolution and connection of each request."""
    trace = aiohttp.TraceConfig()
    trace.on_dns_resolvehost_start.append(_dns_start)
    trace.on_dns_resolvehost_end.append(_dns_end)
    trace.on_connection_create_start.append(_conn_start)
    trace.on_connection_create_end.append(_conn_end)
    trace.freeze()
    return trace


class HttpProbe:
    """Runs ``http`` checks over one shared session; safe for many concurrent runs."""

    def __init__(self) -> None:
        """Create the probe; the session waits for the first run, inside the loop."""
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            force_close=True,  # a fresh connection per probe measures what a new client sees
            limit=0,
            limit_per_host=0,
            # Resolve on every probe: a DNS outage must show, and "resolve" be measured.
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            # One asyncio.timeout per run bounds every phase; aiohttp's own timers would
            # only add handles to the loop and round long deadlines up to whole seconds.
            timeout=aiohttp.ClientTimeout(),
            trace_configs=[_trace_config()],
            headers={"User-Agent": _USER_AGENT},
        )
        return self._session

    async def run(self, check: HttpCheck, now: float) -> ProbeResult:
        """Request ``check.url`` once and judge the answer against ``check.expect``."""
        session = self._session or self._open()
        line = _Timeline()
        start = perf_counter()
        try:
            async with asyncio.timeout(check.timeout):
                reason, detail = await _exchange(session, check, line)
        except TimeoutError:
            reason, detail = _timed_out(line, check)
        except (aiohttp.ClientError, OSError) as exc:
            reason, detail = _failure(exc)
        except Exception as exc:  # a bug guard: run() must never raise for a target
            reason, detail = Reason.PROTOCOL, f"unexpected {type(exc).__name__}"
        duration = perf_counter() - start
        degraded = False
        if reason is None and check.expect.max_latency and duration > check.expect.max_latency:
            degraded = True
            detail = f"latency {duration:.2f}s above {_seconds(check.expect.max_latency)}"
        return ProbeResult(
            check_id=check.id,
            at=now,
            ok=reason is None,
            degraded=degraded,
            reason=reason,
            detail=detail,
            duration_s=duration,
            phases=line.phases(),
        )

    async def close(self) -> None:
        """Close the shared session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _exchange(
    session: aiohttp.ClientSession, check: HttpCheck, line: _Timeline
) -> tuple[Reason | None, str]:
    """Send the request, read what the expectations need, and judge it."""
    expect = check.expect
    async with session.request(
        check.method,
        check.url,
        headers=check.headers,
        data=check.body,
        trace_request_ctx=line,
    ) as resp:
        line.headers_at = perf_counter()
        if resp.status not in expect.status:
            wanted = " or ".join(map(str, expect.status))
            return Reason.HTTP_STATUS, f"status {resp.status}, expected {wanted}"
        needs_body = expect.body_contains is not None or bool(expect.json_)
        declared = resp.content_length
        if not needs_body and (declared is None or declared > _DRAIN_LIMIT):
            return None, ""
        if (
            declared is not None
            and declared > check.max_body
            and not resp.headers.get("Content-Encoding")
        ):
            return Reason.TOO_LARGE, f"body of {declared} bytes above {check.max_body}"
        body = await _read_capped(resp.content, check.max_body)
        line.body_end = perf_counter()
        if body is None:
            return Reason.TOO_LARGE, f"body larger than {check.max_body} bytes"
        needle = expect.body_contains
        if needle is not None and needle not in _text(body, resp.charset):
            return Reason.BODY_MISMATCH, f"body does not contain {show(expect.body_contains)}"
        if expect.json_:
            return _judge_json(body, expect.json_)
    return None, ""


async def _read_capped(stream: aiohttp.StreamReader, cap: int) -> bytes | None:
    """Read the (decompressed) body; None as soon as it exceeds ``cap`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        # Asking for one byte past the cap is how an over-long body is told from a full one.
        chunk = await stream.read(min(_CHUNK, cap - size + 1))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)


def _text(body: bytes, charset: str | None) -> str:
    """Decode leniently: a stray byte must not hide the text being looked for."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _judge_json(body: bytes, expected: dict[str, Any]) -> tuple[Reason | None, str]:
    """Check each ``path: value`` expectation against the decoded body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return Reason.JSON_MISMATCH, "body is not JSON"
    for text, want in expected.items():
        found, value = lookup(document, parse_path(text))
        if not found:
            return Reason.JSON_MISMATCH, f"{text} missing"
        if not json_equal(value, want):
            return Reason.JSON_MISMATCH, f"{text} is {show(value)}, expected {show(want)}"
    return None, ""


def _timed_out(line: _Timeline, check: HttpCheck) -> tuple[Reason, str]:
    """Name the phase the deadline caught the request in."""
    limit = _seconds(check.timeout)
    if line.dns_start is not None:
        return Reason.DNS, f"no DNS answer within {limit}"
    if line.conn_start is not None or line.ready is None:
        return Reason.CONNECT_TIMEOUT, f"not connected within {limit}"
    if line.headers_at is None:
        return Reason.TIMEOUT, f"no response within {limit}"
    return Reason.TIMEOUT, f"body not complete within {limit}"


def _failure(exc: BaseException) -> tuple[Reason, str]:
    """Map a client error to a reason; the detail never repeats the URL or headers."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Reason.DNS, f"cannot resolve {exc.host}: {exc.os_error.strerror}"
    if isinstance(exc, socket.gaierror):
        return Reason.DNS, f"cannot resolve: {exc.strerror}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        why = getattr(cert, "verify_message", None) or type(cert).__name__
        return Reason.TLS, _short(f"certificate rejected by {exc.host}:{exc.port}: {why}")
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        inner = exc.os_error
        why = getattr(inner, "reason", None) or _os_why(inner)
        return Reason.TLS, _short(f"TLS handshake with {exc.host}:{exc.port} failed: {why}")
    if isinstance(exc, ssl.SSLError):
        return Reason.TLS, _short(f"TLS failure: {exc.reason or _os_why(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        if isinstance(exc.os_error, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
            return Reason.CONNECT_REFUSED, f"connection refused by {where}"
        return Reason.CONNECT_ERROR, _short(f"cannot connect to {where}: {_os_why(exc)}")
    if isinstance(exc, aiohttp.InvalidURL):
        return Reason.PROTOCOL, "invalid URL"  # its text is the URL, which may hold a token
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Reason.PROTOCOL, "too many redirects"
    if isinstance(exc, aiohttp.ClientResponseError):
        return Reason.PROTOCOL, _short(f"{type(exc).__name__}: {exc.message or exc.status}")
    if isinstance(exc, OSError):
        return Reason.CONNECT_ERROR, _short(f"connection error: {_os_why(exc)}")
    return Reason.PROTOCOL, _short(f"{type(exc).__name__}: {exc}")


def _os_why(exc: OSError) -> str:
    """The operating system's words for an error, without aiohttp's URL-bearing prefix."""
    return exc.strerror or str(exc) or type(exc).__name__


def _short(text: str) -> str:
    """One line, at most ~200 characters."""
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_LIMIT else line[: _DETAIL_LIMIT - 1] + "…"


def _seconds(value: float) -> str:
    """``2s`` or ``50ms``, the way durations are written in checks.yaml."""
    return f"{value:g}s" if value >= 1 else f"{value * 1000:g}ms"


KIND = ProbeKind(settings=HttpCheck, factory=HttpProbe)
