"""HTTP/1.1 as the probes speak it (monitor/probes/http1.py), part by part, then over the wire.

The pure parts are tables of steps; the exchanges run against raw servers on 127.0.0.1 that
write exact bytes, on asyncio's event loop and again on uvloop's (``both_loops``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from probe_servers import NOW, context, settings
from yarl import URL

from monitor.probes.base import Reason
from monitor.probes.http import HttpCheck, HttpProbe
from monitor.probes.http1 import (
    MAX_HEADERS,
    MAX_LINE,
    Head,
    ProbeFailure,
    parse_head,
    request_bytes,
)
from monitor.probes.httpbody import Chunked, Decoder, Framing, decoder, framing
from monitor.probes.httpcore import HttpClient, Request
from monitor.probes.outcome import Timeline

pytestmark = pytest.mark.both_loops  # the async tests run on asyncio's loop, then uvloop's
CAP = 1024 * 1024


# --- request_bytes ---------------------------------------------------------------------


def head_lines(wire: bytes) -> list[str]:
    """The request line and header lines of a request, without its body."""
    head, _, _ = wire.partition(b"\r\n\r\n")
    return head.decode().split("\r\n")


def fields_of(wire: bytes) -> list[tuple[str, str]]:
    """The header fields of a request, in order, names as written."""
    pairs = [line.split(": ", 1) for line in head_lines(wire)[1:]]
    return [(name, value) for name, value in pairs]


def values_of(wire: bytes, name: str) -> list[str]:
    """Every value of the field ``name`` (any case) in a request."""
    return [value for key, value in fields_of(wire) if key.lower() == name.lower()]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://shop.example:8080/x", "shop.example:8080"),
        ("http://shop.example/x", "shop.example"),
        ("http://shop.example:80/x", "shop.example"),
        ("https://shop.example:443/x", "shop.example"),
        ("https://shop.example:8443/x", "shop.example:8443"),
        ("http://[::1]:8080/x", "[::1]:8080"),
        ("http://[2001:db8::1]/x", "[2001:db8::1]"),
    ],
    ids=[
        "other port",
        "no port",
        "http default",
        "https default",
        "https other port",
        "ipv6 with port",
        "ipv6 default",
    ],
)
def test_host_names_the_port_only_when_it_is_not_the_scheme_default(url: str, host: str) -> None:
    """Host carries the port unless it is the scheme's default; IPv6 literals stay bracketed."""
    assert values_of(request_bytes("GET", URL(url), {}, None), "Host") == [host]


@pytest.mark.parametrize(
    ("url", "pair"),
    [("http://ana:s3cret@shop.example/", b"ana:s3cret"), ("http://ana@shop.example/", b"ana:")],
    ids=["user and password", "user alone"],
)
def test_login_in_the_url_becomes_basic_authorization(url: str, pair: bytes) -> None:
    """``user:pass@`` in the URL is sent as Basic credentials, never in the request line."""
    wire = request_bytes("GET", URL(url), {}, None)
    assert values_of(wire, "Authorization") == [f"Basic {base64.b64encode(pair).decode()}"]
    assert "ana" not in head_lines(wire)[0]


def test_authorization_of_the_check_wins_over_the_url_login() -> None:
    """A check's own Authorization is the only one sent, even with a login in the URL."""
    wire = request_bytes(
        "GET", URL("http://ana:s3cret@shop.example/"), {"authorization": "Bearer t0k"}, None
    )
    assert values_of(wire, "Authorization") == ["Bearer t0k"]


def test_check_headers_override_the_defaults_whatever_their_case() -> None:
    """A check's ``user-agent`` replaces ours; the defaults it does not name stay."""
    wire = request_bytes("GET", URL("http://shop.example/"), {"user-agent": "probe/2"}, None)
    assert values_of(wire, "User-Agent") == ["probe/2"]
    assert values_of(wire, "Accept") == ["*/*"]
    assert values_of(wire, "Accept-Encoding") == ["gzip, deflate"]


def test_framing_headers_of_a_check_never_reach_the_wire() -> None:
    """Content-Length, Transfer-Encoding and Connection are ours whatever a check says."""
    headers = {
        "Content-Length": "999",
        "transfer-encoding": "chunked",
        "CONNECTION": "keep-alive",
        "X-Kept": "yes",
    }
    wire = request_bytes("POST", URL("http://shop.example/"), headers, b"abc")
    assert values_of(wire, "Host") == ["shop.example"]
    assert values_of(wire, "Content-Length") == ["3"]
    assert values_of(wire, "Transfer-Encoding") == []
    assert values_of(wire, "Connection") == ["close"]
    assert values_of(wire, "X-Kept") == ["yes"]


@pytest.mark.parametrize(
    ("method", "body", "headers", "length", "content_type"),
    [
        ("POST", b"abc", {}, ["3"], ["application/octet-stream"]),
        ("POST", b"<a/>", {"content-type": "text/xml"}, ["4"], ["text/xml"]),
        ("POST", None, {}, ["0"], []),
        ("PUT", b"", {}, ["0"], []),
        ("PATCH", None, {}, ["0"], []),
        ("DELETE", b"x", {}, ["1"], ["application/octet-stream"]),
        ("GET", None, {}, [], []),
        ("HEAD", None, {}, [], []),
    ],
    ids=[
        "body",
        "body with its type",
        "POST without body",
        "PUT with empty body",
        "PATCH without body",
        "DELETE with body",
        "GET",
        "HEAD",
    ],
)
def test_body_gives_its_length_and_a_default_type(
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    length: list[str],
    content_type: list[str],
) -> None:
    """A body is announced by length, typed octet-stream unless the check types it."""
    wire = request_bytes(method, URL("http://shop.example/"), headers, body)
    assert values_of(wire, "Content-Length") == length
    assert values_of(wire, "Content-Type") == content_type


def test_request_is_its_head_a_blank_line_then_the_body() -> None:
    """The body follows the blank line that ends the head, and nothing follows the body."""
    body = b"<envelope>\r\n\r\n</envelope>"
    wire = request_bytes("POST", URL("http://shop.example/ws"), {}, body)
    head, blank, rest = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /ws HTTP/1.1\r\n")
    assert blank
    assert rest == body


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://shop.example", "/"),
        ("http://shop.example/caf\u00e9/a b", "/caf%C3%A9/a%20b"),
        ("http://shop.example/s?q=\u00e9t\u00e9&n=1", "/s?q=%C3%A9t%C3%A9&n=1"),
        ("http://shop.example/p#frag", "/p"),
    ],
    ids=["empty path", "non-ASCII path", "non-ASCII query", "fragment"],
)
def test_request_target_is_percent_encoded_ascii(url: str, target: str) -> None:
    """Paths and queries go out percent-encoded; an empty path is ``/``; fragments stay home."""
    wire = request_bytes("GET", URL(url), {}, None)
    assert head_lines(wire)[0] == f"GET {target} HTTP/1.1"
    assert wire.isascii()


# --- parse_head ------------------------------------------------------------------------

MANY = b"".join(b"\r\nX-F%d: v" % n for n in range(MAX_HEADERS))


@pytest.mark.parametrize(
    ("block", "status", "fields"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain", 200, [("Content-Type", "text/plain")]),
        (b"HTTP/1.0 404 Not Found", 404, []),
        (b"HTTP/1.1 204", 204, []),
        (b"HTTP/1.1 503 ", 503, []),
        (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2",
            200,
            [("Set-Cookie", "a=1"), ("set-cookie", "b=2")],
        ),
        (
            b"HTTP/1.1 200 OK\r\nX-Pad:   spaced  \r\nX-Empty:",
            200,
            [("X-Pad", "spaced"), ("X-Empty", "")],
        ),
        (b"HTTP/1.1 200 OK\r\nX-Text: caf\xc3\xa9", 200, [("X-Text", "caf\u00e9")]),
        (b"HTTP/1.1 200 OK" + MANY, 200, [(f"X-F{n}", "v") for n in range(MAX_HEADERS)]),
        (b"HTTP/1.1 200 OK\r\nX-L: " + b"a" * (MAX_LINE - 5), 200, [("X-L", "a" * (MAX_LINE - 5))]),
    ],
    ids=[
        "HTTP/1.1 with a field",
        "HTTP/1.0",
        "no reason phrase",
        "empty reason phrase",
        "repeated field kept",
        "values trimmed, empty value",
        "UTF-8 value",
        f"{MAX_HEADERS} fields",
        "line of MAX_LINE bytes",
    ],
)
def test_good_heads_are_parsed(block: bytes, status: int, fields: list[tuple[str, str]]) -> None:
    """Status and every field, in order, repeated ones kept, looked up whatever the case."""
    head = parse_head(block)
    assert head.status == status
    assert list(head.headers.items()) == fields
    for name, _ in fields:
        same = [v for k, v in fields if k.lower() == name.lower()]
        assert head.headers.getall(name.upper()) == same


@pytest.mark.parametrize(
    ("block", "detail"),
    [
        (b"SSH-2.0-OpenSSH_9.6", "not an HTTP/1 status line"),
        (b"HTTP/2 200", "not an HTTP/1 status line"),
        (b"http/1.1 200 OK", "not an HTTP/1 status line"),
        (b"HTTP/1.1 2x0 OK", "not an HTTP/1 status line"),
        (b"HTTP/1.1 20", "not an HTTP/1 status line"),
        (b"HTTP/1.1 2000 OK", "not an HTTP/1 status line"),
        (b"HTTP/1.1 200OK", "not an HTTP/1 status line"),
        (b"", "not an HTTP/1 status line"),
        (b"HTTP/1.1 200 OK\r\nNoColonHere", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\nName : v", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\n: v", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\n folded: v", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\nTwo Words: v", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nB: 2", "malformed header field"),
        (b"HTTP/1.1 200 OK" + MANY + b"\r\nX-One-Too-Many: v", "more than 128 header fields"),
        (
            b"HTTP/1.1 200 OK\r\nX-Secret: " + b"s" * MAX_LINE,
            "status or header line longer than 8190 bytes",
        ),
        (b"HTTP/1.1 200 " + b"s" * MAX_LINE, "status or header line longer than 8190 bytes"),
    ],
    ids=[
        "not HTTP",
        "HTTP/2",
        "lower-case version",
        "letter in the code",
        "two digits",
        "four digits",
        "no space after the code",
        "empty",
        "no colon",
        "space before the colon",
        "empty name",
        "folded line",
        "space in the name",
        "empty line inside",
        "too many fields",
        "long header line",
        "long status line",
    ],
)
def test_bent_heads_are_refused_as_protocol_errors(block: bytes, detail: str) -> None:
    """A bent head is refused with a fixed detail that never echoes what the target sent."""
    with pytest.raises(ProbeFailure) as refused:
        parse_head(block)
    assert refused.value.reason is Reason.PROTOCOL
    assert refused.value.detail == detail


# --- framing ---------------------------------------------------------------------------


def head_of(status: int, *fields: tuple[str, str]) -> Head:
    """A parsed head with ``fields``, as parse_head would give it."""
    return Head(status, CIMultiDictProxy(CIMultiDict(fields)))


@pytest.mark.parametrize(
    ("method", "head", "kind", "length"),
    [
        ("GET", head_of(200, ("Content-Length", "5")), Framing, 5),
        ("GET", head_of(200, ("Content-Length", "5"), ("Content-Length", "5")), Framing, 5),
        ("GET", head_of(200), Framing, None),
        ("HEAD", head_of(200, ("Content-Length", "50")), Framing, 0),
        ("GET", head_of(204, ("Content-Length", "50")), Framing, 0),
        ("GET", head_of(304, ("Content-Length", "50")), Framing, 0),
        ("GET", head_of(200, ("Transfer-Encoding", "chunked")), Chunked, None),
        ("GET", head_of(200, ("Transfer-Encoding", "gzip, Chunked")), Chunked, None),
        (
            "GET",
            head_of(200, ("Transfer-Encoding", "chunked"), ("Content-Length", "5")),
            Chunked,
            None,
        ),
        (
            "GET",
            head_of(200, ("Transfer-Encoding", "gzip"), ("Content-Length", "5")),
            Framing,
            None,
        ),
    ],
    ids=[
        "length",
        "same length twice",
        "no length: until close",
        "HEAD",
        "204",
        "304",
        "chunked",
        "chunked last of codings",
        "chunked wins over length",
        "other coding: until close",
    ],
)
def test_framing_follows_the_rules_of_rfc_9112(
    method: str, head: Head, kind: type[Framing], length: int | None
) -> None:
    """The body is delimited by method and status first, then coding, then declared length."""
    frame = framing(method, head)
    assert type(frame) is kind
    assert frame.left == length


@pytest.mark.parametrize(
    "values",
    [("5", "6"), ("-1",), ("five",), ("5 5",), ("",)],
    ids=["conflicting", "negative", "not a number", "list", "empty"],
)
def test_invalid_content_length_is_refused(values: tuple[str, ...]) -> None:
    """A Content-Length that is not one decimal number is a protocol error."""
    head = head_of(200, *(("Content-Length", value) for value in values))
    with pytest.raises(ProbeFailure) as refused:
        framing("GET", head)
    assert (refused.value.reason, refused.value.detail) == (
        Reason.PROTOCOL,
        "invalid Content-Length",
    )


def test_exact_length_drops_what_follows_the_body() -> None:
    """A body of declared length ends there; bytes after it are dropped."""
    frame = Framing(5)
    assert frame.feed(b"hel") == b"hel"
    assert not frame.done
    assert frame.feed(b"loHTTP/1.1 200 OK") == b"lo"
    assert frame.done
    assert frame.feed(b"more") == b""
    frame.finish()


def test_short_body_of_declared_length_is_refused_at_the_end() -> None:
    """The connection ending before the declared length is reached is a protocol error."""
    frame = Framing(100)
    assert frame.feed(b"x" * 10) == b"x" * 10
    with pytest.raises(ProbeFailure) as refused:
        frame.finish()
    assert refused.value.reason is Reason.PROTOCOL


def test_body_without_length_is_read_until_the_connection_ends() -> None:
    """Without a length, every byte is body and the end of the connection ends it."""
    frame = Framing(None)
    assert [frame.feed(b"a" * 70000), frame.feed(b"b")] == [b"a" * 70000, b"b"]
    assert not frame.done
    frame.finish()


def test_zero_length_body_is_done_before_any_byte() -> None:
    """A declared length of zero needs nothing from the target."""
    assert Framing(0).done


# --- Chunked ---------------------------------------------------------------------------

CHUNKED = (
    b"5;name=value\r\nhello\r\n"
    b"1\r\n,\r\n"
    b'A; quoted="x;y"\r\n0123456789\r\n'
    b"1a\r\n" + b"z" * 26 + b"\r\n"
    b"0\r\nX-Checksum: 1234\r\nX-Other: o\r\n\r\n"
)
DECODED = b"hello,0123456789" + b"z" * 26


def test_chunked_body_split_at_every_byte_boundary_decodes_the_same() -> None:
    """Wherever the body is cut in two, the decoded bytes are the same and it ends."""
    for cut in range(len(CHUNKED) + 1):
        frame = Chunked()
        out = frame.feed(CHUNKED[:cut]) + frame.feed(CHUNKED[cut:])
        assert (cut, out, frame.done) == (cut, DECODED, True)
        frame.finish()


def test_chunked_body_fed_byte_by_byte_decodes_the_same() -> None:
    """One byte at a time, the body still decodes whole and ends after the trailers."""
    frame = Chunked()
    out = b"".join(frame.feed(CHUNKED[i : i + 1]) for i in range(len(CHUNKED)))
    assert out == DECODED
    assert frame.done


def test_chunked_body_ends_after_its_trailers_and_drops_what_follows() -> None:
    """Trailers are consumed, not returned; bytes after the final blank line are dropped."""
    frame = Chunked()
    assert frame.feed(b"3\r\nabc\r\n0\r\nX-T: 1\r\n") == b"abc"
    assert not frame.done
    assert frame.feed(b"\r\nHTTP/1.1 200 OK\r\n\r\n") == b""
    assert frame.done


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"zz\r\n", "malformed chunk size"),
        (b"\r\n", "malformed chunk size"),
        (b"-5\r\nhello\r\n", "malformed chunk size"),
        (b"0x5\r\nhello\r\n", "malformed chunk size"),
        (b"1_0\r\n", "malformed chunk size"),
        (b"+5\r\nhello\r\n", "malformed chunk size"),
        (b"1" + b"0" * 16 + b"\r\n", "malformed chunk size"),
        (b"5\r\nhelloXX\r\n", "malformed chunked body"),
        (b"5\r\nhello0\r\n\r\n", "malformed chunked body"),
        (b"f" * (MAX_LINE + 1), "chunk line too long"),
    ],
    ids=[
        "not hex",
        "empty size",
        "negative",
        "0x prefix",
        "underscore",
        "plus sign",
        "over 16 digits",
        "data longer than its size",
        "no CRLF after data",
        "endless size line",
    ],
)
def test_malformed_chunked_body_is_refused(body: bytes, detail: str) -> None:
    """A bent chunk size or a chunk not ended by CRLF is a protocol error."""
    with pytest.raises(ProbeFailure) as refused:
        Chunked().feed(body)
    assert (refused.value.reason, refused.value.detail) == (Reason.PROTOCOL, detail)


@pytest.mark.parametrize(
    "received",
    [b"", b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n", b"5\r\nhello\r\n0\r\nX-T: 1\r\n"],
    ids=["nothing", "inside a chunk", "between chunks", "before the trailers end", "in trailers"],
)
def test_chunked_body_ending_before_its_last_chunk_is_refused(received: bytes) -> None:
    """The connection ending before the final blank line is a protocol error."""
    frame = Chunked()
    frame.feed(received)
    with pytest.raises(ProbeFailure) as refused:
        frame.finish()
    assert refused.value.reason is Reason.PROTOCOL


# --- Decoder ---------------------------------------------------------------------------

TEXT = b"<tracking><parcel>6A0</parcel></tracking>" * 50


def packed(coding: str, data: bytes) -> bytes:
    """``data`` under a content coding: gzip, zlib-wrapped deflate or raw deflate."""
    bits = {"gzip": 31, "deflate": 15, "raw deflate": -15}[coding]
    packer = zlib.compressobj(6, zlib.DEFLATED, bits)
    return packer.compress(data) + packer.flush()


CODINGS = ["gzip", "deflate", "raw deflate"]


@pytest.mark.parametrize("coding", CODINGS)
def test_content_codings_decode(coding: str) -> None:
    """gzip, deflate as the standard says (zlib) and raw deflate as some servers send it decode."""
    assert Decoder(coding.split()[-1]).feed(packed(coding, TEXT), CAP) == TEXT


@pytest.mark.parametrize("coding", CODINGS)
def test_content_codings_decode_whatever_the_pieces(coding: str) -> None:
    """Fed in pieces, first an empty one then a byte at a time, the same text comes out."""
    data = packed(coding, TEXT)
    inflate = Decoder(coding.split()[-1])
    out = inflate.feed(b"", CAP) + b"".join(
        inflate.feed(data[i : i + 1], CAP) for i in range(len(data))
    )
    assert out == TEXT


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("limit", [1, 1000, 65537])
def test_decoded_output_never_exceeds_the_limit(coding: str, limit: int) -> None:
    """A 10 MB bomb of zeros yields exactly the limit asked, never more."""
    bomb = packed(coding, b"\0" * (10 * 1024 * 1024))
    assert Decoder(coding.split()[-1]).feed(bomb, limit) == b"\0" * limit


@pytest.mark.parametrize(
    ("coding", "garbage"),
    [
        ("gzip", b"this is not gzip"),
        ("deflate", b"\xff" * 16),
        ("deflate", b"x\x9c" + b"\xff" * 16),
    ],
    ids=["gzip", "raw deflate", "zlib header then garbage"],
)
def test_garbage_under_a_content_coding_is_refused(coding: str, garbage: bytes) -> None:
    """Bytes that do not inflate are a protocol error naming the coding."""
    with pytest.raises(ProbeFailure) as refused:
        Decoder(coding).feed(garbage, CAP)
    assert (refused.value.reason, refused.value.detail) == (
        Reason.PROTOCOL,
        f"body is not valid {coding}",
    )


@pytest.mark.parametrize(
    ("value", "decoded"),
    [("gzip", True), ("x-gzip", True), (" Deflate ", True), ("br", False), ("identity", False)],
)
def test_only_gzip_and_deflate_are_decoded(value: str, decoded: bool) -> None:
    """gzip, x-gzip and deflate get a decoder, in any case; other codings are kept as sent."""
    assert (decoder(head_of(200, ("Content-Encoding", value))) is not None) is decoded
    assert decoder(head_of(200)) is None


# --- over the wire ---------------------------------------------------------------------

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
"""What a raw server does once it has read a request: writes bytes, lingers or resets."""


@dataclass
class Raw:
    """A raw server's port and the requests it read, head and body, in order."""

    port: int
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)

    def url(self, path: str = "/p") -> str:
        """The URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"


def sends(*pieces: bytes, hold: bool = False) -> Reply:
    """Write ``pieces`` one after the other; then close, or hold until the client closes."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n, piece in enumerate(pieces):
            if n:
                await asyncio.sleep(0.01)  # a separate segment, a separate read
            writer.write(piece)
            await writer.drain()
        if hold:
            await reader.read()  # until the client hangs up

    return reply


def resets(*pieces: bytes) -> Reply:
    """Write ``pieces``, then reset the connection (RST, not FIN)."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await sends(*pieces)(reader, writer)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    return reply


@contextlib.asynccontextmanager
async def raw_server(*replies: Reply) -> AsyncIterator[Raw]:
    """A server on 127.0.0.1 answering connection n with reply n (the last one repeats)."""
    held: set[asyncio.StreamWriter] = set()
    server_side: Raw

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.add(writer)
        reply = replies[min(len(server_side.requests), len(replies) - 1)]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            server_side.requests.append((head, await reader.readexactly(length)))
            await reply(reader, writer)
            writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()
        finally:
            held.discard(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    server_side = Raw(server.sockets[0].getsockname()[1])
    try:
        yield server_side
    finally:
        server.close()
        for writer in list(held):
            writer.transport.abort()
        await server.wait_closed()
        await asyncio.sleep(0)


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    """A client closed after the test."""
    instance = HttpClient()
    yield instance
    await instance.close()


@pytest.fixture
async def probe() -> AsyncIterator[HttpProbe]:
    """An http probe closed after the test, as the daemon would close it."""
    instance = HttpProbe(context())
    yield instance
    await instance.close()


def http_check(url: str, **values: Any) -> HttpCheck:
    """A validated http check of ``url``."""
    return HttpCheck.model_validate(
        settings(id="http1", service="shop", type="http", url=url, **values)
    )


async def fetch(client: HttpClient, request: Request) -> tuple[int, CIMultiDictProxy[str], bytes]:
    """Status, header fields and body of ``request``."""
    async with client.send(request, Timeline()) as reply:
        return reply.status, reply.headers, await reply.read(CAP)


async def test_tests_run_on_the_loop_they_are_named_for(request: pytest.FixtureRequest) -> None:
    """Each async test here runs once on asyncio's loop and once on uvloop's."""
    loop = asyncio.get_running_loop()
    expected = "uvloop" if "[uvloop]" in request.node.name else "asyncio"
    assert type(loop).__module__.split(".")[0] == expected


async def test_interim_answers_before_the_real_one_are_skipped(client: HttpClient) -> None:
    """``100 Continue`` and ``103 Early Hints`` heads are skipped, whole or in pieces."""
    async with raw_server(
        sends(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 1",
            b"03 Early Hints\r\nLink: </t.js>\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok",
        )
    ) as raw:
        status, headers, body = await fetch(client, Request("GET", raw.url(), {}))
    assert (status, headers.get("X-Final"), "Link" in headers, body) == (200, "yes", False, b"ok")


async def test_close_delimited_http10_body_is_read_whole(client: HttpClient) -> None:
    """An HTTP/1.0 answer without a length is read until the server closes."""
    async with raw_server(
        sends(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ", b"second", b" third")
    ) as raw:
        status, _, body = await fetch(client, Request("GET", raw.url(), {}))
    assert (status, body) == (200, b"first second third")


async def test_chunked_body_with_trailers_is_read(client: HttpClient) -> None:
    """A chunked answer sent in odd pieces decodes whole, trailers left out."""
    async with raw_server(
        sends(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED[:7],
            CHUNKED[7:30],
            CHUNKED[30:],
        )
    ) as raw:
        status, _, body = await fetch(client, Request("GET", raw.url(), {}))
    assert (status, body) == (200, DECODED)


async def test_deflate_body_whose_first_chunk_comes_late_is_decoded(client: HttpClient) -> None:
    """A zlib deflate body whose first data arrives after its size line still inflates."""
    data = packed("deflate", TEXT)
    async with raw_server(
        sends(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(data),
            data + b"\r\n0\r\n\r\n",
        )
    ) as raw:
        _, _, body = await fetch(client, Request("GET", raw.url(), {}))
    assert body == TEXT


async def test_body_cut_short_fails_with_protocol(probe: HttpProbe) -> None:
    """Ten bytes of a declared hundred, then the server closes: a protocol error."""
    async with raw_server(
        sends(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
    ) as raw:
        result = await probe.run(http_check(raw.url(), expect={"body_contains": "0123"}), NOW)
    assert (result.ok, result.reason) == (False, Reason.PROTOCOL)
    assert result.detail == "connection closed before the body was complete"


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("GET", 204), ("GET", 304)],
    ids=["HEAD", "204", "304"],
)
async def test_answers_without_a_body_do_not_wait_for_one(
    probe: HttpProbe, method: str, status: int
) -> None:
    """HEAD, 204 and 304 end at their head though they declare a length and the server lingers."""
    async with raw_server(
        sends(b"HTTP/1.1 %d X\r\nContent-Length: 50\r\n\r\n" % status, hold=True)
    ) as raw:
        check = http_check(raw.url(), method=method, timeout="5s", expect={"status": [status]})
        result = await probe.run(check, NOW)
    assert (result.ok, result.reason, result.detail) == (True, None, "")
    assert raw.requests[0][0].startswith(method.encode() + b" /p HTTP/1.1\r\n")


async def test_server_closing_without_answering_fails_with_protocol(probe: HttpProbe) -> None:
    """A server that reads the request and closes has not answered: a protocol error."""
    async with raw_server(sends()) as raw:
        result = await probe.run(http_check(raw.url()), NOW)
    assert (result.ok, result.reason) == (False, Reason.PROTOCOL)
    assert result.detail == "the server closed the connection without an answer"


@pytest.mark.parametrize(
    "pieces",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",),
        (b"HTTP/1.1 200 OK\r\nContent-Le",),
    ],
    ids=["mid-body", "mid-head"],
)
async def test_connection_reset_fails_with_connect_error(
    probe: HttpProbe, pieces: tuple[bytes, ...]
) -> None:
    """A reset while the answer comes in is a connection error, not a protocol one."""
    async with raw_server(resets(*pieces)) as raw:
        result = await probe.run(http_check(raw.url(), expect={"body_contains": "0"}), NOW)
    assert (result.ok, result.reason) == (False, Reason.CONNECT_ERROR)
    assert result.detail.startswith("connection error: ")


REDIRECTED = b"HTTP/1.1 %d Moved\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n"
DONE = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [
        (303, "GET", b""),
        (302, "GET", b""),
        (301, "GET", b""),
        (307, "POST", b"<a/>"),
        (308, "POST", b"<a/>"),
    ],
    ids=["303", "302", "301", "307", "308"],
)
async def test_redirect_after_post_is_followed_as_its_status_says(
    client: HttpClient, status: int, method: str, body: bytes
) -> None:
    """303 (and 301/302, as browsers do) turn a POST into a bodiless GET; 307/308 keep it."""
    async with raw_server(sends(REDIRECTED % status), sends(DONE)) as raw:
        request = Request("POST", raw.url(), {"Content-Type": "text/xml"}, body="<a/>")
        assert (await fetch(client, request))[2] == b"done"
    (_, posted), (head, sent) = raw.requests
    assert posted == b"<a/>"
    assert head.startswith(f"{method} /next HTTP/1.1\r\n".encode())
    assert sent == body
    assert (b"Content-Length" in head) is (method == "POST")


async def test_redirect_to_ftp_fails_with_protocol(probe: HttpProbe) -> None:
    """A redirect to a scheme HTTP cannot follow is refused, not connected to."""
    async with raw_server(
        sends(b"HTTP/1.1 302 Found\r\nLocation: ftp://files.example/x\r\nContent-Length: 0\r\n\r\n")
    ) as raw:
        result = await probe.run(http_check(raw.url()), NOW)
    assert (result.ok, result.reason) == (False, Reason.PROTOCOL)
    assert result.detail == "redirected to a URL that is not http(s)"
    assert len(raw.requests) == 1


async def test_healthy_run_times_connect_processing_and_transfer(probe: HttpProbe) -> None:
    """A healthy run over a raw server reports its three phases, none negative."""
    async with raw_server(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello")) as raw:
        result = await probe.run(http_check(raw.url(), expect={"body_contains": "hello"}), NOW)
    assert (result.ok, result.reason) == (True, None)
    assert set(result.phases) == {"connect", "processing", "transfer"}
    assert all(value >= 0 for value in result.phases.values())


def test_a_check_may_name_the_virtual_host_it_probes() -> None:
    """A check's Host replaces ours, once: an address probed as the site it serves."""
    wire = request_bytes("GET", URL("http://10.0.0.5:8080/"), {"Host": "shop.example"}, None)
    assert values_of(wire, "Host") == ["shop.example"]


@pytest.mark.parametrize("header", [{"X-A": "1\r\nX-B: 2"}, {"X-A\n": "1"}, {"X-A": "1\x00"}])
def test_a_header_with_a_line_break_is_never_sent(header: dict[str, str]) -> None:
    """A line break would write a header of its own: the request is refused, nothing echoed."""
    with pytest.raises(ProbeFailure) as refused:
        request_bytes("GET", URL("http://shop.example/"), header, None)
    assert refused.value.reason is Reason.PROTOCOL
    assert "X-B" not in refused.value.detail and "1" not in refused.value.detail
