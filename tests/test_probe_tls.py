"""The tls probe against TLS servers on 127.0.0.1 presenting trustme certificates."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from probe_servers import (
    ca_file,
    closed_port,
    context,
    open_fds,
    server_context,
    settings,
    settle_fds,
    silent_server,
)

from monitor.probes import PROBES
from monitor.probes.base import Reason
from monitor.probes.tls import TlsCheck, TlsProbe

DAY = 86400.0
HANG_S = 30.0  # how long a test lets a silent server hold a probe deaf to its own deadline


def tls_check(port: int, **values: Any) -> TlsCheck:
    """A validated tls check on 127.0.0.1."""
    return TlsCheck.model_validate(settings(type="tls", host="127.0.0.1", port=port, **values))


@contextlib.asynccontextmanager
async def tls_server(tls: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS server that completes handshakes then waits for the client; yields its port."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0, ssl=tls, backlog=512)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def leaf(authority: trustme.CA, *names: str, days: float = 90.0) -> ssl.SSLContext:
    """A server context whose certificate expires ``days`` from now (negative: expired)."""
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    not_before = min(now, not_after) - dt.timedelta(days=30)
    cert = authority.issue_cert(*names, not_before=not_before, not_after=not_after)
    return server_context(cert)


@pytest.fixture
def authority() -> trustme.CA:
    """A private certificate authority."""
    return trustme.CA()


@pytest.fixture
def trusted(authority: trustme.CA, tmp_path: Path) -> str:
    """The private CA's certificate file, for ``ca_file:``."""
    return ca_file(authority, tmp_path)


@pytest.fixture
async def probe() -> AsyncIterator[TlsProbe]:
    """A probe closed after the test."""
    instance = TlsProbe(context())
    yield instance
    await instance.close()


def test_tls_is_registered_with_its_settings_and_factory() -> None:
    """The registry maps ``tls`` to this module's settings model and probe."""
    assert PROBES["tls"].settings is TlsCheck
    assert isinstance(PROBES["tls"].factory(context()), TlsProbe)


async def test_valid_certificate_is_ok_with_its_expiry(
    authority: trustme.CA, trusted: str, probe: TlsProbe
) -> None:
    """A certificate from the trusted CA is ok, times connect and tls, and reports notAfter."""
    now = time.time()
    async with tls_server(leaf(authority, "127.0.0.1", days=90)) as port:
        result = await probe.run(tls_check(port, ca_file=trusted), now)
    assert result.ok and not result.degraded, result.detail
    assert result.cert_not_after is not None
    assert abs(result.cert_not_after - (now + 90 * DAY)) < 120
    assert {"connect", "tls"} <= set(result.phases)


async def test_certificate_expiring_soon_is_degraded(
    authority: trustme.CA, trusted: str, probe: TlsProbe
) -> None:
    """Five days left with ``min_days_left: 14`` is ok but degraded, saying how long remains."""
    async with tls_server(leaf(authority, "127.0.0.1", days=5)) as port:
        check = tls_check(port, ca_file=trusted, expect={"min_days_left": 14})
        result = await probe.run(check, time.time())
    assert result.ok and result.degraded
    assert result.detail.startswith("certificate expires in 5.0 days (")
    assert result.detail.endswith("UTC), below 14")


async def test_expired_certificate_fails_with_cert_expired(
    authority: trustme.CA, trusted: str, probe: TlsProbe
) -> None:
    """An expired certificate fails with cert_expired, saying when it expired."""
    async with tls_server(leaf(authority, "127.0.0.1", days=-3)) as port:
        result = await probe.run(tls_check(port, ca_file=trusted), time.time())
    assert result.reason is Reason.CERT_EXPIRED
    assert result.detail.startswith(f"certificate of 127.0.0.1:{port} expired on ")
    assert result.detail.endswith("(3.0 days ago)")
    assert result.cert_not_after is not None and result.cert_not_after < time.time()


async def test_certificate_for_another_host_fails_with_cert_hostname(
    authority: trustme.CA, trusted: str, probe: TlsProbe
) -> None:
    """A certificate naming other hosts fails with cert_hostname, listing the names."""
    async with tls_server(leaf(authority, "shop.example.net", "www.example.net")) as port:
        result = await probe.run(tls_check(port, ca_file=trusted), time.time())
    assert result.reason is Reason.CERT_HOSTNAME
    assert result.detail == (
        f"certificate of 127.0.0.1:{port} is for shop.example.net, www.example.net, not 127.0.0.1"
    )


async def test_self_signed_certificate_fails_with_cert_untrusted(
    authority: trustme.CA, tmp_path: Path, probe: TlsProbe
) -> None:
    """A self-signed certificate fails with cert_untrusted, naming its issuer."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with authority.cert_pem.tempfile() as cert, authority.private_key_pem.tempfile() as key:
        tls.load_cert_chain(cert, key)
    async with tls_server(tls) as port:
        result = await probe.run(tls_check(port), time.time())
    assert result.reason is Reason.CERT_UNTRUSTED
    assert result.detail.startswith(f"certificate of 127.0.0.1:{port} not trusted: self")
    assert "(issuer " in result.detail


async def test_unknown_authority_fails_with_cert_untrusted(
    authority: trustme.CA, probe: TlsProbe
) -> None:
    """A certificate from a CA the system does not know fails with cert_untrusted."""
    async with tls_server(leaf(authority, "127.0.0.1")) as port:
        result = await probe.run(tls_check(port), time.time())
    assert result.reason is Reason.CERT_UNTRUSTED
    assert "unable to get local issuer certificate" in result.detail


async def test_closed_port_fails_with_connect_refused(probe: TlsProbe) -> None:
    """Nothing listening fails with connect_refused."""
    result = await probe.run(tls_check(closed_port()), time.time())
    assert result.reason is Reason.CONNECT_REFUSED


async def test_server_silent_during_handshake_fails_with_timeout(probe: TlsProbe) -> None:
    """A server that accepts but never handshakes fails with timeout within the timeout."""
    async with silent_server() as port:
        started = time.monotonic()
        result = await asyncio.wait_for(
            probe.run(tls_check(port, timeout="200ms"), time.time()), HANG_S
        )
        elapsed = time.monotonic() - started
    assert result.reason is Reason.TIMEOUT
    assert result.detail == f"no TLS handshake with 127.0.0.1:{port} within 200ms"
    # Ended by its own deadline, not the server (nor asyncio's 60 s handshake timeout): a late
    # timer on a busy machine cannot make 200 ms look like either.
    assert 0.2 <= elapsed < HANG_S / 2


async def test_many_failing_runs_leak_no_file_descriptors(
    authority: trustme.CA, trusted: str, probe: TlsProbe
) -> None:
    """200 expired-certificate runs and 200 runs against a silent handshake leave no fd behind.

    The expired runs have the whole HANG_S, so that however slowly a busy machine does their
    400 handshakes they end on the certificate. The silent ones run apart, first: 200 connects
    at once take ~150 ms of their 200 ms even on an idle machine, so a busy one lets the
    deadline catch some still connecting. A timeout either way, and as bound to close its
    socket: which of the two is the machine's doing, not the probe's.
    """
    async with (
        tls_server(leaf(authority, "127.0.0.1", days=-1)) as expired_port,
        silent_server() as silent_port,
    ):
        expired = tls_check(expired_port, ca_file=trusted, timeout=HANG_S)
        hung = tls_check(silent_port, timeout="200ms")
        await asyncio.gather(probe.run(expired, time.time()), probe.run(hung, time.time()))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            before = open_fds()
            timeouts = await asyncio.gather(*(probe.run(hung, time.time()) for _ in range(200)))
            rejected = await asyncio.gather(*(probe.run(expired, time.time()) for _ in range(200)))
            after = await settle_fds(before)
    assert {r.reason for r in rejected} == {Reason.CERT_EXPIRED}
    assert {r.reason for r in timeouts} <= {Reason.TIMEOUT, Reason.CONNECT_TIMEOUT}
    assert abs(after - before) <= 3
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
