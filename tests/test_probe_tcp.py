"""The tcp probe against real asyncio TCP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest
from probe_servers import NOW, closed_port, context, open_fds, settings, settle_fds, silent_server

from monitor.probes import PROBES
from monitor.probes.base import Reason
from monitor.probes.tcp import TcpCheck, TcpProbe

CONTEXT = context()
HANG_S = 30.0  # how long a test lets a silent server hold a probe deaf to its own deadline


def tcp_check(port: int, host: str = "127.0.0.1", **values: Any) -> TcpCheck:
    """Build a validated check with the base fields every check carries."""
    return TcpCheck.model_validate(
        settings(id="edi-sftp", service="edi", type="tcp", host=host, port=port, **values)
    )


@contextlib.asynccontextmanager
async def tcp_server(banner: bytes) -> AsyncIterator[int]:
    """Serve ``banner`` to each client; yields the port."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(banner)
            await writer.drain()
            await reader.read()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, backlog=512)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def probe() -> TcpProbe:
    """A fresh probe; it holds no resources between runs."""
    return TcpProbe(CONTEXT)


def test_tcp_is_registered_with_its_settings_and_factory() -> None:
    """The registry maps ``tcp`` to this module's settings model and probe."""
    assert PROBES["tcp"].settings is TcpCheck
    assert isinstance(PROBES["tcp"].factory(CONTEXT), TcpProbe)


def test_invalid_banner_regex_is_rejected_by_the_settings() -> None:
    """A banner that is not a regular expression fails validation, not a probe run."""
    with pytest.raises(pydantic.ValidationError, match="regular expression"):
        tcp_check(22, expect={"banner": "SSH-(2"})


async def test_connect_to_listening_port_is_ok(probe: TcpProbe) -> None:
    """Connecting to a listening port succeeds, stamps the time and times the connect."""
    async with silent_server() as port:
        result = await probe.run(tcp_check(port), NOW)
    assert result.ok and result.reason is None
    assert result.at == NOW and result.check_id == "edi-sftp"
    assert set(result.phases) == {"connect"}
    assert result.phases["connect"] <= result.duration_s


async def test_host_name_is_resolved_and_timed(probe: TcpProbe) -> None:
    """A host name gets a resolve phase before the connect phase."""
    async with silent_server() as port:
        result = await probe.run(tcp_check(port, host="localhost"), NOW)
    assert result.ok, result.detail
    assert set(result.phases) == {"resolve", "connect"}


async def test_closed_port_fails_with_connect_refused(probe: TcpProbe) -> None:
    """Nothing listening on the port fails with connect_refused."""
    port = closed_port()
    result = await probe.run(tcp_check(port), NOW)
    assert result.reason is Reason.CONNECT_REFUSED
    assert result.detail == f"connection refused by 127.0.0.1:{port}"


async def test_unresolvable_host_fails_with_dns(probe: TcpProbe) -> None:
    """A name under ``.invalid`` never resolves, which fails with dns."""
    result = await probe.run(tcp_check(22, host="forewarn-probe.invalid"), NOW)
    assert result.reason is Reason.DNS
    assert result.detail.startswith("cannot resolve forewarn-probe.invalid")


async def test_matching_banner_is_ok(probe: TcpProbe) -> None:
    """A banner matching ``expect.banner`` passes."""
    async with tcp_server(b"SSH-2.0-OpenSSH_9.6\r\n") as port:
        result = await probe.run(tcp_check(port, expect={"banner": r"^SSH-2\.0-"}), NOW)
    assert result.ok, result.detail


async def test_banner_split_across_writes_still_matches(probe: TcpProbe) -> None:
    """A banner arriving in pieces matches once enough has arrived."""

    served = asyncio.Event()

    async def slow_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for piece in (b"220 mx.exa", b"mple.net ESMTP\r\n"):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.02)
            with contextlib.suppress(ConnectionError):
                await reader.read()
        finally:
            writer.close()  # ours to close, or the socket outlives the test (ResourceWarning)
            served.set()

    server = await asyncio.start_server(slow_greet, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await probe.run(tcp_check(port, expect={"banner": "^220 .*ESMTP"}), NOW)
        await served.wait()
    assert result.ok, result.detail


async def test_wrong_banner_fails_with_banner_mismatch_quoting_it(probe: TcpProbe) -> None:
    """A wrong banner fails with banner_mismatch, quoted and escaped, once the timeout ends."""
    async with tcp_server(b"220 mail ready\r\n") as port:
        check = tcp_check(port, timeout="300ms", expect={"banner": "^SSH-"})
        result = await probe.run(check, NOW)
    assert result.reason is Reason.BANNER_MISMATCH
    assert result.detail == "banner '220 mail ready\\r\\n' does not match '^SSH-'"


async def test_long_wrong_banner_is_truncated_in_the_detail(probe: TcpProbe) -> None:
    """4 KiB without a match fails at once, not at the timeout, quoting only the start of it."""
    async with tcp_server(b"x" * 5000) as port:
        check = tcp_check(port, timeout="30s", expect={"banner": "^SSH-"})
        result = await probe.run(check, NOW)
    assert result.reason is Reason.BANNER_MISMATCH
    assert result.detail.startswith("banner 'xxx") and "…" in result.detail
    assert len(result.detail) < 200
    # Waiting for more of the banner would last the whole 30 s timeout.
    assert result.duration_s < check.timeout / 2


async def test_peer_closing_before_banner_fails_with_banner_mismatch(probe: TcpProbe) -> None:
    """A connection closed without a word fails with banner_mismatch at once."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await probe.run(tcp_check(port, expect={"banner": "^SSH-"}), NOW)
    assert result.reason is Reason.BANNER_MISMATCH
    assert result.detail == "connection closed before a banner matching '^SSH-'"


async def test_silent_server_with_banner_expected_fails_with_timeout(probe: TcpProbe) -> None:
    """A service that says nothing is hung: timeout, not banner_mismatch, within the timeout."""
    async with silent_server() as port:
        check = tcp_check(port, timeout="300ms", expect={"banner": "^SSH-"})
        started = time.monotonic()
        result = await asyncio.wait_for(probe.run(check, NOW), HANG_S)
        elapsed = time.monotonic() - started
    assert result.reason is Reason.TIMEOUT
    assert result.detail == f"no banner from 127.0.0.1:{port} within 300ms"
    # Ended by its own deadline, not the server: a late timer on a busy machine cannot make
    # 300 ms look like the server's hang.
    assert 0.3 <= elapsed < HANG_S / 2


async def test_many_runs_leak_no_file_descriptors(probe: TcpProbe) -> None:
    """300 refused runs and 300 banner timeouts leave the descriptor count unchanged.

    Refusals have the whole HANG_S, so that a busy machine cannot make them time out. 300
    connects at once take a good part of the 200 ms the others have, so a busy machine lets
    their deadline catch some still connecting: a timeout all the same, as bound to close.
    """
    refused = tcp_check(closed_port(), timeout=HANG_S)
    async with silent_server() as port:
        silent = tcp_check(port, timeout="200ms", expect={"banner": "^SSH-"})
        await asyncio.gather(probe.run(refused, NOW), probe.run(silent, NOW))
        with warnings.catch_warnings(record=True) as caught:
            # A socket freed only by garbage collection warns; closing it ourselves does not.
            warnings.simplefilter("always", ResourceWarning)
            before = open_fds()
            results = await asyncio.gather(
                *(probe.run(refused, NOW) for _ in range(300)),
                *(probe.run(silent, NOW) for _ in range(300)),
            )
            # The server side closes its ends as it sees each EOF, a few loop turns later.
            after = await settle_fds(before)
            gc.collect()
    assert {result.reason for result in results[:300]} == {Reason.CONNECT_REFUSED}
    assert {result.reason for result in results[300:]} <= {Reason.TIMEOUT, Reason.CONNECT_TIMEOUT}
    assert abs(after - before) <= 3
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
