"""The dns probe against a small DNS server on 127.0.0.1 built with dnspython's message API."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from typing import Any, cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pydantic
import pytest
from probe_servers import NOW, context, open_fds, settings, settle_fds

from monitor.probes import PROBES
from monitor.probes.base import Reason
from monitor.probes.dns import DnsCheck, DnsProbe

ZONE = {
    ("ws.carrier.test", "A"): ["192.0.2.10", "192.0.2.11"],
    ("ws.carrier.test", "AAAA"): ["2001:db8:0::10"],
    ("www.carrier.test", "CNAME"): ["ws.carrier.test."],
    ("carrier.test", "MX"): ["10 mx1.carrier.test.", "20 mx2.carrier.test."],
}


class Server(asyncio.DatagramProtocol):
    """Answers from ZONE; NXDOMAIN for names under missing.test; silence for silent.test."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the socket to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Answer one query."""
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().rstrip(".")
        kind = dns.rdatatype.to_text(question.rdtype)
        if name.endswith("silent.test"):
            return
        response = dns.message.make_response(query)
        if name.endswith("missing.test"):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, kind) in ZONE:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", kind, ZONE[(name, kind)])
            )
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server() -> AsyncIterator[str]:
    """Run the server on an ephemeral UDP port; yield ``127.0.0.1:port``."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Server, local_addr=("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


def dns_check(server: str, name: str, **values: Any) -> DnsCheck:
    """A validated dns check asking ``server``."""
    return DnsCheck.model_validate(settings(type="dns", name=name, nameservers=[server], **values))


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """The address of the running DNS server."""
    async with dns_server() as address:
        yield address


@pytest.fixture
async def probe() -> AsyncIterator[DnsProbe]:
    """A probe closed after the test."""
    instance = DnsProbe(context())
    yield instance
    await instance.close()


def test_dns_is_registered_with_its_settings_and_factory() -> None:
    """The registry maps ``dns`` to this module's settings model and probe."""
    assert PROBES["dns"].settings is DnsCheck
    assert isinstance(PROBES["dns"].factory(context()), DnsProbe)


@pytest.mark.parametrize(
    ("name", "record", "values"),
    [
        ("ws.carrier.test", "A", ["192.0.2.11", "192.0.2.10"]),
        ("ws.carrier.test", "AAAA", ["2001:db8::10"]),
        ("www.carrier.test", "CNAME", ["WS.carrier.test"]),
        ("carrier.test", "MX", ["20 mx2.carrier.test", "10 mx1.carrier.test."]),
    ],
)
async def test_expected_values_in_any_order_and_spelling_are_ok(
    server: str, probe: DnsProbe, name: str, record: str, values: list[str]
) -> None:
    """A, AAAA, CNAME and MX answers equal to the expected set pass, however written."""
    check = dns_check(server, name, record=record, expect={"values": values})
    result = await probe.run(check, NOW)
    assert result.ok, result.detail
    assert set(result.phases) == {"resolve"}


async def test_any_answer_is_ok_without_expected_values(server: str, probe: DnsProbe) -> None:
    """Without ``expect.values`` a non-empty answer passes."""
    assert (await probe.run(dns_check(server, "ws.carrier.test"), NOW)).ok


async def test_different_values_fail_with_dns_listing_both(server: str, probe: DnsProbe) -> None:
    """An answer other than the expected set fails with dns, showing seen and expected."""
    check = dns_check(server, "ws.carrier.test", expect={"values": ["192.0.2.99"]})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.DNS
    assert result.detail == "A for ws.carrier.test is 192.0.2.10, 192.0.2.11, expected 192.0.2.99"


async def test_unknown_name_fails_with_nxdomain(server: str, probe: DnsProbe) -> None:
    """A name that does not exist fails with nxdomain."""
    result = await probe.run(dns_check(server, "ws.missing.test"), NOW)
    assert (result.reason, result.detail) == (
        Reason.NXDOMAIN,
        "ws.missing.test does not exist (NXDOMAIN)",
    )


async def test_name_without_that_record_fails_with_dns(server: str, probe: DnsProbe) -> None:
    """An existing name without the asked record type fails with dns."""
    result = await probe.run(dns_check(server, "carrier.test", record="AAAA"), NOW)
    assert (result.reason, result.detail) == (Reason.DNS, "no AAAA record for carrier.test")


async def test_silent_server_fails_with_timeout_in_time(server: str, probe: DnsProbe) -> None:
    """A server that never answers fails with timeout at the check's timeout."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await probe.run(dns_check(server, "ws.silent.test", timeout="300ms"), NOW)
    elapsed = loop.time() - started
    assert result.reason is Reason.TIMEOUT
    assert result.detail == "no DNS answer for ws.silent.test within 300ms"
    # Were the check's timeout ignored, dnspython's own lifetime (5 s) would end the query: a
    # late timer on a busy machine cannot make 300 ms look like that.
    assert 0.3 <= elapsed < dns.resolver.Resolver(configure=False).lifetime / 2


@pytest.mark.parametrize(
    "values",
    [
        {"nameservers": ["ns.example.net"]},
        {"nameservers": ["127.0.0.1:99999"]},
        {"record": "TXT"},
        {"expect": {"values": ["not-an-ip"]}},
        {"record": "MX", "expect": {"values": ["mx.example.net"]}},
    ],
)
def test_invalid_dns_settings_are_rejected(values: dict[str, Any]) -> None:
    """A named nameserver, a bad port, an unsupported record or a malformed value fail."""
    values.setdefault("nameservers", ["127.0.0.1:53"])
    with pytest.raises(pydantic.ValidationError):
        DnsCheck.model_validate(settings(type="dns", name="a.test", **values))


async def test_many_failing_queries_leak_no_file_descriptors(server: str, probe: DnsProbe) -> None:
    """200 NXDOMAIN answers and 200 timeouts leave the descriptor count unchanged."""
    missing = dns_check(server, "x.missing.test")
    silent = dns_check(server, "x.silent.test", timeout="200ms")
    await asyncio.gather(probe.run(missing, NOW), probe.run(silent, NOW))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        before = open_fds()
        results = await asyncio.gather(
            *(probe.run(missing, NOW) for _ in range(200)),
            *(probe.run(silent, NOW) for _ in range(200)),
        )
        after = await settle_fds(before)
    assert {r.reason for r in results} == {Reason.NXDOMAIN, Reason.TIMEOUT}
    assert abs(after - before) <= 3
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
