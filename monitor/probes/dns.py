"""DNS probe: ask for A, AAAA, CNAME or MX records, asynchronously, within ``timeout``."""

from __future__ import annotations

import asyncio
import ipaddress
from time import perf_counter
from typing import Any, Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
from pydantic import Field, field_validator, model_validator

from monitor.core.fields import CheckBase, StrictModel
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult, Reason
from monitor.probes.local import local_failure
from monitor.probes.outcome import Verdict, seconds, short

RecordType = Literal["A", "AAAA", "CNAME", "MX"]


class DnsExpect(StrictModel):
    """What a healthy answer holds: exactly these values (in any order), else any answer."""

    values: list[str] | None = None


class DnsCheck(CheckBase):
    """Settings of a ``dns`` check."""

    type: Literal["dns"]
    name: str
    record: RecordType = "A"
    nameservers: list[str] = Field(default_factory=list)  # "ip" or "ip:port"; else the system's
    expect: DnsExpect = DnsExpect()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        try:
            dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise ValueError(f"not a valid DNS name: {exc}") from None
        return name

    @field_validator("nameservers")
    @classmethod
    def _valid_servers(cls, servers: list[str]) -> list[str]:
        for server in servers:
            nameserver_address(server)
        return servers

    @model_validator(mode="after")
    def _valid_values(self) -> DnsCheck:
        for value in self.expect.values or []:
            normalize(self.record, value)
        return self


def nameserver_address(text: str) -> tuple[str, int]:
    """``192.0.2.1``, ``192.0.2.1:5353``, ``[2001:db8::1]:53`` or ``2001:db8::1``."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"nameserver {text!r} must be an IP address, with :port if not 53"
        ) from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise ValueError(f"nameserver {whole!r} has an invalid port")
    return int(text)


def normalize(record: str, value: str) -> str:
    """One way to write a value: compressed IPv6, lowercase names without the final dot."""
    if record in ("A", "AAAA"):
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
    if record == "MX":
        preference, _, host = value.strip().partition(" ")
        if not preference.isdigit() or not host.strip():
            raise ValueError(f"{value!r} must be written 'preference host', such as '10 mx.a.b'")
        return f"{int(preference)} {host.strip().rstrip('.').lower()}"
    return value.strip().rstrip(".").lower()


def _text(record: str, rdata: Any) -> str:
    if record in ("A", "AAAA"):
        return normalize(record, rdata.address)
    if record == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text().rstrip('.').lower()}"
    return str(rdata.target.to_text()).rstrip(".").lower()


class DnsProbe:
    """Runs ``dns`` checks; the system resolver's configuration is read once."""

    def __init__(self, context: ProbeContext | None = None) -> None:
        """Create the probe; nothing is read before the first run."""
        self._system: dns.asyncresolver.Resolver | None = None

    def _resolver(self, check: DnsCheck) -> dns.asyncresolver.Resolver:
        if not check.nameservers:
            if self._system is None:
                self._system = dns.asyncresolver.Resolver()
            return self._system
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*nameserver_address(server))
            for server in check.nameservers
        ]
        return resolver

    async def run(self, check: DnsCheck, now: float) -> ProbeResult:
        """Resolve ``check.name`` and judge the answer."""
        start = perf_counter()
        try:
            async with asyncio.timeout(check.timeout):
                resolver = self._resolver(check)
                answer = await resolver.resolve(
                    check.name, check.record, search=False, lifetime=check.timeout
                )
            reason, detail = _judge(check, sorted({_text(check.record, r) for r in answer}))
        except (TimeoutError, dns.exception.Timeout):
            reason = Reason.TIMEOUT
            detail = f"no DNS answer for {check.name} within {seconds(check.timeout)}"
        except dns.resolver.NXDOMAIN:
            reason, detail = Reason.NXDOMAIN, f"{check.name} does not exist (NXDOMAIN)"
        except dns.resolver.NoAnswer:
            reason, detail = Reason.DNS, f"no {check.record} record for {check.name}"
        except (dns.exception.DNSException, OSError) as exc:
            reason, detail = _failure(check, exc)
        except Exception as exc:  # a bug guard: run() must never raise for a target
            reason, detail = Reason.PROTOCOL, f"unexpected {type(exc).__name__}"
        duration = perf_counter() - start
        return ProbeResult.judged(
            check.id, now, reason, detail, duration, phases={"resolve": duration}
        )

    async def close(self) -> None:
        """Nothing to release: each query closes its own socket."""


def _failure(check: DnsCheck, exc: dns.exception.DNSException | OSError) -> tuple[Reason, str]:
    """Our own exhaustion (each server's socket refused), or the name's resolution failed."""
    local = local_failure(exc)
    if local is not None:
        return local
    if isinstance(exc, dns.resolver.NoNameservers):
        return Reason.DNS, short(f"no nameserver answered for {check.name}: {exc}")
    if isinstance(exc, OSError):
        return Reason.DNS, short(f"cannot resolve {check.name}: {exc.strerror}")
    return Reason.DNS, short(f"cannot resolve {check.name}: {exc}")


def _judge(check: DnsCheck, seen: list[str]) -> Verdict:
    expected = check.expect.values
    if not seen:
        return Reason.DNS, f"no {check.record} record for {check.name}"
    if expected is None:
        return None, ""
    wanted = sorted({normalize(check.record, value) for value in expected})
    if seen == wanted:
        return None, ""
    return Reason.DNS, short(
        f"{check.record} for {check.name} is {', '.join(seen)}, expected {', '.join(wanted)}"
    )


KIND = ProbeKind(settings=DnsCheck, factory=DnsProbe)
