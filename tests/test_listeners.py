"""Listeners: connection limits, the header timeout, the admin split and headers on errors.

Real aiohttp listeners on 127.0.0.1 port 0 and real sockets; the daemon tests run the real
``Daemon`` on a real config.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web

from monitor.config.load import load_config
from monitor.daemon import Daemon
from monitor.runtime.fdlimit import ConnectionLimits, split
from monitor.runtime.metrics import Metrics
from monitor.web.app import new_app
from monitor.web.listeners import Guard, Listener

ROOT = Path(__file__).resolve().parent.parent


async def hello(request: web.Request) -> web.Response:
    """A page."""
    return web.Response(text="hello")


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    """A listener of 6 connections in all, 3 per address, with a 0.5 s header timeout."""
    app = new_app()
    app.router.add_get("/", hello)
    guard = Guard("public", ConnectionLimits(total=6, per_address=3), Metrics())
    running = Listener(app, guard, header_timeout=0.5)
    await running.start("127.0.0.1", 0)
    yield running
    await running.stop()


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP connection from ``source``."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``within_s``."""
    try:
        async with asyncio.timeout(within_s):
            return await reader.read(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def get(port: int, source: str = "127.0.0.1") -> int:
    """GET / from ``source``; its status."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"http://127.0.0.1:{port}/") as response,
    ):
        return response.status


async def test_one_address_gets_its_share_and_no_more(listener: Listener) -> None:
    """The 4th connection from one address is closed at once; another address is served."""
    held = [await connect(listener.port, "127.0.0.2") for _ in range(3)]
    reader, _ = await connect(listener.port, "127.0.0.2")
    assert await closed_by_server(reader, within_s=10.0)
    assert listener.guard.by_address["127.0.0.2"] == 3
    assert await get(listener.port, "127.0.0.3") == 200
    for _, writer in held:
        writer.close()


async def test_the_total_is_capped_whatever_the_addresses(listener: Listener) -> None:
    """With 6 held from two addresses, a 7th from a third address is closed at once."""
    held = [await connect(listener.port, f"127.0.0.{2 + i % 2}") for i in range(6)]
    await asyncio.sleep(0.05)
    reader, _ = await connect(listener.port, "127.0.0.4")
    assert await closed_by_server(reader, within_s=10.0)
    assert listener.guard.open == 6
    refused = listener.guard.metrics.connections_refused.labels("public", "total")
    assert refused._value.get() == 1
    for _, writer in held:
        writer.close()


async def test_idle_and_slow_header_connections_are_closed_at_the_header_timeout(
    listener: Listener,
) -> None:
    """Silent and dripping clients are both dropped after header_timeout, not kept for ever."""
    started = time.monotonic()
    idle_reader, _ = await connect(listener.port, "127.0.0.2")
    slow_reader, slow = await connect(listener.port, "127.0.0.3")
    slow.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for n in range(20):  # a header line every 0.1 s, never the blank line that ends them
        if slow_reader.at_eof():
            break
        slow.write(f"X-Drip-{n}: 1\r\n".encode())
        await asyncio.sleep(0.1)
    assert await closed_by_server(idle_reader, within_s=10.0)
    assert await closed_by_server(slow_reader, within_s=10.0)
    assert listener.guard.open == 0
    # A place freed by a timeout serves the next client.
    assert await get(listener.port, "127.0.0.2") == 200
    assert time.monotonic() - started >= 0.5


def test_the_open_file_budget_keeps_a_reserve_and_gives_the_admin_a_share() -> None:
    """Connections never reach into the reserve; the admin listener has its own share."""
    public, admin = split(1024, 600, 1000, 64, admin=True)
    assert admin is not None
    assert public.total + admin.total <= 1024 - 600
    assert admin.total == 106 and public.total == 318 and public.per_address == 64
    alone, none = split(524_288, 600, 1000, 64, admin=False)
    assert none is None and alone == ConnectionLimits(1000, 64)


CONFIG = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", admin_listen: "{admin}",
          api_tokens_file: "{tokens}"}}
services: [{{id: web, name: {{en: Web}}}}]
checks:
  - {{id: web, service: web, type: tcp, host: 127.0.0.1, port: 9, interval: 1s}}
  - {{id: cron, service: web, type: heartbeat, token_file: "{beat}", every: 1h}}
"""
TOKEN = "ops-token-0123456789abcdef"


async def status_of(port: int, method: str, path: str, token: str = "") -> tuple[int, dict]:
    """One request; its status and headers."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"http://127.0.0.1:{port}{path}", headers=headers) as response,
    ):
        await response.read()
        return response.status, dict(response.headers)


async def test_with_admin_listen_the_public_port_serves_only_the_public_face(
    tmp_path: Path,
) -> None:
    """Public: page, feed, JSON; admin: metrics, health, operator API, heartbeats; not both."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{TOKEN}\n", encoding="utf-8")
    beat = tmp_path / "beat"
    beat.write_text("cron-token-0123456789\n", encoding="utf-8")
    config = tmp_path / "checks.yaml"
    text = CONFIG.format(state=tmp_path / "state", admin="127.0.0.1:0", tokens=tokens, beat=beat)
    config.write_text(text, encoding="utf-8")
    daemon = Daemon(load_config(config))
    await daemon.start()
    try:
        public, admin = daemon.port, daemon.admin_port
        assert public != admin
        for path in ("/", "/feed.atom", "/api/v1/status", "/api/v1/incidents"):
            assert (await status_of(public, "GET", path))[0] == 200, path
            assert (await status_of(admin, "GET", path, TOKEN))[0] in (200, 404), path
        assert (await status_of(admin, "GET", "/"))[0] == 404
        for method, path in (
            ("GET", "/metrics"),
            ("GET", "/healthz"),
            ("GET", "/api/v1/maintenance"),
            ("POST", "/heartbeat/cron-token-0123456789"),
        ):
            assert (await status_of(public, method, path, TOKEN))[0] in (404, 405), path
            assert (await status_of(admin, method, path, TOKEN))[0] == 200, path
        # The shared incident list is the operator's on the admin port: a token is required.
        assert (await status_of(admin, "GET", "/api/v1/incidents"))[0] == 401
    finally:
        await daemon.stop()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/", 405),
        ("GET", "/api/v1/maintenance", 401),
        ("POST", "/api/v1/maintenance", 401),
    ],
)
async def test_errors_carry_the_security_headers_and_no_version(
    tmp_path: Path, method: str, path: str, status: int
) -> None:
    """Raised errors get CSP, nosniff and Referrer-Policy; Server names no version."""
    config = tmp_path / "checks.yaml"
    config.write_text(
        f'daemon: {{state_dir: "{tmp_path / "state"}", listen: "127.0.0.1:0"}}\n'
        "services: [{id: web, name: {en: Web}}]\n"
        "checks: [{id: web, service: web, type: tcp, host: 127.0.0.1, port: 9}]\n",
        encoding="utf-8",
    )
    daemon = Daemon(load_config(config))
    await daemon.start()
    try:
        got, headers = await status_of(daemon.port, method, path)
    finally:
        await daemon.stop()
    assert got == status
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Server"] == "forewarn"


ACCEPT_SCRIPT = """
import asyncio, json, resource, socket, sys
import structlog
from monitor.web.listeners import install_accept_handler
events = []
structlog.configure(processors=[lambda _l, _m, e: events.append(e) or ""])

async def main():
    install_accept_handler(asyncio.get_running_loop())
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hoard = []
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    try:
        while True:
            hoard.append(open("/dev/null"))
    except OSError:
        pass
    await asyncio.sleep(2.5)  # asyncio retries a failed accept every second
    print(json.dumps([e.get("event") for e in events]))

asyncio.run(main())
"""


def test_accept_failures_for_lack_of_descriptors_are_logged_once_per_episode() -> None:
    """Out of descriptors, asyncio's accept retries make one ``accept_failed`` event, no trace."""
    done = subprocess.run(
        [sys.executable, "-c", ACCEPT_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout.strip().splitlines()[-1])
    assert events == ["accept_failed"]
    assert "Traceback" not in done.stderr and "out of system resource" not in done.stderr


async def test_requests_the_parser_refuses_get_our_headers_and_no_traceback(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed heads are a 400 with the security headers, no version, one log line."""
    heads = []
    with structlog.testing.capture_logs() as logs:
        for n in range(20):
            reader, writer = await connect(listener.port, "127.0.0.2")
            writer.write(f"GET / HTTP/1.1\r\nHost: x\r\nBad Header {n}\r\n\r\n".encode())
            heads.append((await reader.read()).split(b"\r\n\r\n")[0].decode())
            writer.close()
    for head in heads:
        assert head.startswith("HTTP/1.0 400"), head
        assert "Server: forewarn\r\n" in head and "aiohttp" not in head
        assert "X-Content-Type-Options: nosniff" in head
    assert [e["event"] for e in logs] == ["bad_requests"]
    assert not [r for r in caplog.records if r.name == "aiohttp.server"]


def test_an_ipv6_client_is_counted_by_its_64_and_a_trusted_proxy_is_not_capped() -> None:
    """New addresses in one /64 share a share; a trusted proxy's connections are not capped."""
    guard = Guard(
        "public", ConnectionLimits(total=100, per_address=2), Metrics(), (ip_network("10.0.0.1"),)
    )
    admitted = [guard.admit(f"2001:db8:1:2::{n:x}") for n in range(1, 5)]
    assert admitted == [True, True, False, False]
    assert guard.admit("2001:db8:1:3::1")  # another /64
    assert all(guard.admit("10.0.0.1") for _ in range(10))
    guard.release("2001:db8:1:2::1")
    assert guard.admit("2001:db8:1:2::99") and guard.open == 13
