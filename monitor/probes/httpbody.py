"""The body of an HTTP/1.1 answer: where it ends (length, chunks or close) and its gzip or
deflate coding undone, each step bounded (chunk lines like header lines, decoded output never
past what is asked for)."""

from __future__ import annotations

import zlib

from monitor.probes.base import Reason
from monitor.probes.http1 import MAX_LINE, Head, ProbeFailure

_NO_BODY_STATUS = frozenset({204, 304})
_HEX = frozenset(b"0123456789abcdefABCDEF")


def framing(method: str, head: Head) -> Framing:
    """How the body of ``head`` is delimited (RFC 9112 §6.3)."""
    if method == "HEAD" or head.status in _NO_BODY_STATUS:
        return Framing(0)
    codings = head.headers.get("Transfer-Encoding", "")
    if codings.rsplit(",", 1)[-1].strip().lower() == "chunked":
        return Chunked()
    if "Transfer-Encoding" in head.headers:
        return Framing(None)
    declared = content_length(head)
    return Framing(declared)


def content_length(head: Head) -> int | None:
    """The declared body length; None when there is none; refuses a malformed one."""
    values = set(head.headers.getall("Content-Length", ()))
    if not values:
        return None
    value = values.pop().strip()
    if values or not value.isdigit():
        raise ProbeFailure(Reason.PROTOCOL, "invalid Content-Length")
    return int(value)


class Framing:
    """A body of ``length`` bytes, or, when None, of whatever comes until the connection ends."""

    def __init__(self, length: int | None) -> None:
        self.left = length
        self.done = length == 0

    def feed(self, data: bytes) -> bytes:
        """The body bytes in ``data``; what follows the body is dropped."""
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        self.done = self.left == 0
        return data

    def finish(self) -> None:
        """The connection ended: refuse a body cut short."""
        if not self.done and self.left is not None:
            raise ProbeFailure(Reason.PROTOCOL, "connection closed before the body was complete")


class Chunked(Framing):
    """A chunked body: size lines, data, trailers; each line bounded like a header line."""

    def __init__(self) -> None:
        super().__init__(None)
        self._pending = b""
        self._size = -1  # bytes of the current chunk still to come; -1 between chunks
        self._trailers = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes in ``data``, the framing removed."""
        out: list[bytes] = []
        data = self._pending + data
        self._pending = b""
        while data and not self.done:
            if self._size > 0:
                out.append(data[: self._size])
                data, self._size = data[self._size :], self._size - len(out[-1])
                if self._size == 0:
                    self._size = -2  # the CRLF after the chunk's data
                continue
            end = data.find(b"\r\n")
            if end < 0:
                if len(data) > MAX_LINE:
                    raise ProbeFailure(Reason.PROTOCOL, "chunk line too long")
                self._pending = data
                break
            line, data = data[:end], data[end + 2 :]
            self._line(line)
        return b"".join(out)

    def _line(self, line: bytes) -> None:
        if self._size == -2:  # the end of a chunk's data
            if line:
                raise ProbeFailure(Reason.PROTOCOL, "malformed chunked body")
            self._size = -1
        elif self._trailers:
            self.done = not line
        else:
            digits = line.split(b";", 1)[0].strip()
            # Hex digits only: int() would also take a sign, "0x" and underscores.
            if not digits or len(digits) > 16 or not _HEX.issuperset(digits):
                raise ProbeFailure(Reason.PROTOCOL, "malformed chunk size")
            self._size = int(digits, 16)
            if self._size == 0:
                self._trailers = True

    def finish(self) -> None:
        """The connection ended: refuse a body whose last chunk never came."""
        if not self.done:
            raise ProbeFailure(Reason.PROTOCOL, "connection closed before the body was complete")


class Decoder:
    """Undoes a gzip or deflate content coding, never producing more than asked for."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._inflate: zlib._Decompress | None = None
        self._start = b""  # deflate's first byte, held until its wrapping can be told

    def feed(self, data: bytes, limit: int) -> bytes:
        """Up to ``limit`` decoded bytes of ``data``; exactly ``limit`` means there is more."""
        if self._inflate is None:
            if self._coding == "deflate":  # two bytes tell zlib from raw: wait for them
                data, self._start = self._start + data, b""
                if len(data) < 2:
                    self._start = data
                    return b""
            if self._coding != "deflate":
                bits = 16 + zlib.MAX_WBITS  # gzip
            elif len(data) > 1 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0:
                bits = zlib.MAX_WBITS  # a zlib stream, as the standard says
            else:
                bits = -zlib.MAX_WBITS  # raw deflate, as some servers send it
            self._inflate = zlib.decompressobj(bits)
        try:
            return self._inflate.decompress(data, limit)
        except zlib.error:
            raise ProbeFailure(Reason.PROTOCOL, f"body is not valid {self._coding}") from None


def decoder(head: Head) -> Decoder | None:
    """The decoder of the answer's content coding; None when it is sent as is."""
    coding = head.headers.get("Content-Encoding", "").strip().lower()
    return Decoder(coding) if coding in ("gzip", "x-gzip", "deflate") else None
