"""HTTP/1.1 as a probe speaks it: one request per fresh connection, every part bounded.

A probe needs no pool, cookies, proxies or streaming API: a request written once, and an
answer read within limits. aiohttp's client spent ~170 µs of CPU on such an exchange, this
one ~40 µs (docs/performance.md, issue 21). Hostile answers are refused by size: a status or
header line over ``MAX_LINE`` bytes (aiohttp's limit, kept), a head over ``MAX_HEAD``, more
than ``MAX_HEADERS`` fields. The body is read with flow control (the socket pauses while
256 KiB wait unread), then framed and decoded by ``httpbody`` within the caller's cap, so what
is buffered stays bounded whatever the target sends.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from monitor.probes.base import Reason

MAX_LINE = 8190
MAX_HEAD = 64 * 1024
MAX_HEADERS = 128
_HIGH_WATER = 256 * 1024  # raw bytes held before the socket is paused until they are read
_USER_AGENT = "forewarn (synthetic monitoring)"
# What aiohttp sent, kept so that targets see the same client as before.
_DEFAULTS = (("User-Agent", _USER_AGENT), ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"))
# Framing is ours to state: a check cannot make the request lie about its own length. Its
# Host is the check's to choose (a virtual host probed at an address), as aiohttp allowed.
_OURS = frozenset({"connection", "content-length", "transfer-encoding"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_BREAK = re.compile(r"[\r\n\0]")


class ProbeFailure(Exception):
    """Raised inside a run to stop it with a reason and a detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def request_bytes(method: str, url: URL, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """A whole request: its line, header fields, blank line and body.

    A line break in a header would write a header of the target's choosing: refused here too,
    though checks.yaml and a transaction's extracted values are held to one line already.
    """
    if any(_BREAK.search(f"{name}{value}") for name, value in headers.items()):
        raise ProbeFailure(Reason.PROTOCOL, "a header holds a line break: not sent")
    given = {name.lower() for name in headers}
    lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {url.host_port_subcomponent}")
    lines += [f"{name}: {value}" for name, value in _DEFAULTS if name.lower() not in given]
    if url.user is not None and "authorization" not in given:  # user:pass@ in the URL: Basic
        pair = f"{url.user}:{url.password or ''}".encode("latin-1", "replace")
        lines.append(f"Authorization: Basic {base64.b64encode(pair).decode()}")
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() not in _OURS]
    if body is not None or method in _WITH_BODY:
        lines.append(f"Content-Length: {len(body or b'')}")
        if body and "content-type" not in given:
            lines.append("Content-Type: application/octet-stream")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (body or b"")


@dataclass(frozen=True, slots=True)
class Head:
    """The status and header fields of an answer."""

    status: int
    headers: CIMultiDictProxy[str]


def parse_head(block: bytes) -> Head:
    """The status line and fields of one head (without its blank line); refuses what is bent."""
    lines = block.split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise ProbeFailure(Reason.PROTOCOL, f"more than {MAX_HEADERS} header fields")
    for raw in lines:
        if len(raw) > MAX_LINE:
            raise ProbeFailure(Reason.PROTOCOL, too_long())
    version, _, rest = lines[0].partition(b" ")
    code, after = rest[:3], rest[3:4]  # three digits, then a space or nothing
    if (
        not version.startswith(b"HTTP/1.")
        or len(code) != 3
        or not code.isdigit()
        or after not in (b"", b" ")
    ):
        raise ProbeFailure(Reason.PROTOCOL, "not an HTTP/1 status line")
    fields: CIMultiDict[str] = CIMultiDict()
    for raw in lines[1:]:
        name, colon, value = raw.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise ProbeFailure(Reason.PROTOCOL, "malformed header field")
        fields.add(name.decode("latin-1"), value.strip().decode("utf-8", "surrogateescape"))
    return Head(int(code), CIMultiDictProxy(fields))


def too_long() -> str:
    """The detail of a status or header line over the limit; the line itself is never shown."""
    return f"status or header line longer than {MAX_LINE} bytes"


class Answer(asyncio.Protocol):
    """The receiving end of one exchange: the head parsed as it arrives, the body held raw."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._head: asyncio.Future[Head] = loop.create_future()
        self._head.add_done_callback(_retrieved)  # a failure nobody waits for is not an error
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to pause and close it."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        """Buffer; parse the head when it is complete; pause when the reader falls behind."""
        self._buffer += data
        if not self._head.done():
            self._take_head()
        elif len(self._buffer) > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        """The target has finished sending: let the transport close."""
        self._end(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone, with or without an error."""
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        self._ended = True
        if exc is not None and self._error is None:
            self._error = exc
        if not self._head.done():
            if self._error is not None:
                self._head.set_exception(self._error)
            else:
                detail = "the server closed the connection without an answer"
                self._head.set_exception(ProbeFailure(Reason.PROTOCOL, detail))
        self._wake()

    def _take_head(self) -> None:
        while True:  # 1xx interim answers (100 Continue, 103 Early Hints) are skipped
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                last_line = len(self._buffer) - self._buffer.rfind(b"\n") - 1
                if last_line > MAX_LINE:
                    self._fail(ProbeFailure(Reason.PROTOCOL, too_long()))
                elif len(self._buffer) > MAX_HEAD:
                    self._fail(ProbeFailure(Reason.PROTOCOL, f"head larger than {MAX_HEAD} bytes"))
                return
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            try:
                head = parse_head(block)
            except ProbeFailure as failure:
                self._fail(failure)
                return
            if not 100 <= head.status < 200:
                self._head.set_result(head)
                return

    def _fail(self, failure: ProbeFailure) -> None:
        self._error = failure
        if not self._head.done():
            self._head.set_exception(failure)
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def head(self) -> Head:
        """The answer's head, once it is in."""
        return await self._head

    async def chunk(self) -> bytes:
        """The raw body bytes received since the last call; empty once the target is done."""
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self._ended:
                return b""
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _retrieved(future: asyncio.Future[Head]) -> None:
    if not future.cancelled():
        future.exception()
