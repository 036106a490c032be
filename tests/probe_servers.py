"""Real servers on 127.0.0.1 for the probe tests, and the few helpers they share."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import zlib
from collections.abc import AsyncIterator
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

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=512)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


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
