"""Real servers on 127.0.0.1 for the probe tests, and the few helpers they share."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from monitor.probes.base import ProbeContext
from monitor.probes.heartbeat import HeartbeatBook

NOW = 1_700_000_000.0
TIMING = {
    "id": "probe-test",
    "service": "svc",
    "interval": "30s",
    "timeout": "2s",
    "retry_interval": "5s",
    "failure_threshold": 3,
    "success_threshold": 2,
}


def context(started_at: float = NOW) -> ProbeContext:
    """What the daemon would hand a probe kind, with an empty heartbeat book."""
    return ProbeContext(heartbeats=HeartbeatBook(started_at=started_at))


def settings(**values: Any) -> dict[str, Any]:
    """A check's settings: the base fields every check carries, plus ``values``."""
    return {**TIMING, **values}


@functools.cache
def gzip_bomb(megabytes: int) -> bytes:
    """Gzip ``megabytes`` MiB of zeros without holding them in memory at once."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    return b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()


async def endless(request: web.Request) -> web.StreamResponse:
    """A chunked body that never ends."""
    response = web.StreamResponse()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        while True:
            await response.write(b"x" * 65536)
    return response


async def bomb(request: web.Request) -> web.Response:
    """About 64 KiB on the wire that inflate to 64 MiB."""
    return web.Response(
        body=gzip_bomb(64), headers={"Content-Encoding": "gzip", "Content-Type": "text/xml"}
    )


@contextlib.asynccontextmanager
async def serve(app: web.Application, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Run ``app`` on an ephemeral port of 127.0.0.1 and yield its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers; yields its port."""

    held: set[asyncio.StreamWriter] = set()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.add(writer)
        try:
            with contextlib.suppress(ConnectionError):
                await reader.read()
            writer.close()
        finally:
            held.discard(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=512)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        await _shut(server, held)


async def _shut(server: asyncio.Server, accepted: set[asyncio.StreamWriter]) -> None:
    """Stop ``server`` and drop the connections it still holds, before the loop ends.

    A connection whose client just went away is seen closing only a loop turn later; left to
    the garbage collector, its socket would warn in whichever test runs next.
    """
    server.close()
    for writer in list(accepted):
        writer.transport.abort()
    await server.wait_closed()
    await asyncio.sleep(0)  # let the aborted transports finish closing


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def open_fds() -> int:
    """How many file descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


async def settle_fds(before: int) -> int:
    """The descriptor count once servers have closed their ends (a few loop turns)."""
    for _ in range(50):
        if abs(open_fds() - before) <= 3:
            break
        await asyncio.sleep(0.02)
    return open_fds()


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server-side TLS context presenting ``cert``."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(tls)
    return tls


def ca_file(authority: trustme.CA, folder: Path) -> str:
    """Write the CA certificate to ``folder`` and return its path, for ``ca_file:``."""
    path = folder / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


# Hostile targets: raw HTTP/1.1 answers written straight to the socket, streamed from one
# shared chunk so a "1 GiB" body is never materialized by the server either.
_ZEROS = b"\0" * 65536
GIB = 1024 * 1024 * 1024

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]
"""Writes a hostile answer once the request head is in; may run until the peer goes away."""


async def huge_body(writer: asyncio.StreamWriter, size: int = GIB) -> None:
    """A declared ``size``-byte body (1 GiB), streamed 64 KiB at a time."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {size}\r\n\r\n".encode()
    )
    sent = 0
    while sent < size:
        writer.write(_ZEROS[: size - sent])
        sent += len(_ZEROS)
        await writer.drain()


async def endless_chunks(writer: asyncio.StreamWriter) -> None:
    """A chunked body that never ends."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n" % len(_ZEROS) + _ZEROS + b"\r\n"
    while True:
        writer.write(chunk)
        await writer.drain()


async def gzip_stream(writer: asyncio.StreamWriter, size: int = 4 * GIB) -> None:
    """Gzip of ``size`` bytes of zeros (4 GiB), compressed as it is sent: ~1 KiB per MiB."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    mebibyte = b"\0" * (1024 * 1024)
    for _ in range(size // len(mebibyte)):
        piece = packer.compress(mebibyte) + packer.flush(zlib.Z_SYNC_FLUSH)
        writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0)  # drain waits only once the socket is full: let the probe run
    piece = packer.flush()
    writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n0\r\n\r\n")
    await writer.drain()


async def long_header(writer: asyncio.StreamWriter, size: int = 100 * 1024) -> None:
    """A status line, then one header line of ``size`` bytes (100 KiB)."""
    filler = b"a" * size
    writer.write(b"HTTP/1.1 200 OK\r\nX-Filler: " + filler + b"\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()


async def redirect_loop(writer: asyncio.StreamWriter) -> None:
    """A redirect to the very same path, forever."""
    writer.write(
        b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()


@contextlib.asynccontextmanager
async def hostile_server(answer: Answer) -> AsyncIterator[int]:
    """Serve ``answer`` to every request on an ephemeral port of 127.0.0.1; yields the port."""

    accepted: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.add(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await answer(writer)
            writer.close()  # after what is still buffered is sent
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()  # the probe hung up: what it should do with such answers
        finally:
            accepted.discard(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        await _shut(server, accepted)


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def settle_tasks(before: int) -> int:
    """The asyncio task count once servers' handlers have seen their peers go (loop turns)."""
    for _ in range(100):
        if len(asyncio.all_tasks()) <= before:
            break
        await asyncio.sleep(0.02)
    return len(asyncio.all_tasks())
