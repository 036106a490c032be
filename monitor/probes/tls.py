"""TLS probe: handshake with the default verifying context, read the certificate's expiry.

When verification fails, a second handshake without verification reads the certificate, so
the detail can say what is wrong with it (expired when, issued for which names, by whom).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from time import perf_counter
from typing import Annotated, Literal

from pydantic import Field

from monitor.core.fields import CheckBase, StrictModel
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult, Reason
from monitor.probes.certs import CaFile, der_summary, utc_text, verifying_context
from monitor.probes.local import local_failure
from monitor.probes.outcome import Verdict, seconds, short
from monitor.probes.resolver import Resolver, chosen
from monitor.probes.sockets import addresses, connect

_DAY = 86400.0
_CLOSE_WAIT_S = 1.0
_EXPIRED = {10}  # X509_V_ERR_CERT_HAS_EXPIRED
_HOSTNAME = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# Unknown issuer, self-signed leaf or chain, unable to verify the leaf: an incomplete chain.
_UNTRUSTED = {2, 18, 19, 20, 21}


class TlsExpect(StrictModel):
    """What a healthy certificate looks like."""

    min_days_left: Annotated[float, Field(gt=0, le=3650)] | None = None


class TlsCheck(CheckBase):
    """Settings of a ``tls`` check."""

    type: Literal["tls"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    server_name: str | None = None  # SNI and the name verified; default: host
    ca_file: CaFile | None = None  # trust this CA bundle (only) instead of the system's
    expect: TlsExpect = TlsExpect()


class TlsProbe:
    """Runs ``tls`` checks; keeps one TLS context per CA bundle."""

    def __init__(self, context: ProbeContext | None = None) -> None:
        """Create the probe; contexts are made on first use."""
        self._contexts: dict[str | None, ssl.SSLContext] = {}
        given = context.resolver if context is not None else None
        self._resolver, self._owned = chosen(given)

    def _context(self, ca_file: str | None) -> ssl.SSLContext:
        context = self._contexts.get(ca_file)
        if context is None:
            context = self._contexts[ca_file] = verifying_context(ca_file)
        return context

    async def run(self, check: TlsCheck, now: float) -> ProbeResult:
        """Handshake with ``host:port`` and judge the certificate."""
        phases: dict[str, float] = {}
        stage = ["resolve"]
        start = perf_counter()
        not_after: float | None = None
        try:
            async with asyncio.timeout(check.timeout):
                try:
                    context = self._context(check.ca_file)
                    der = await _handshake(self._resolver, check, context, phases, stage)
                    not_after = der_summary(der)[0]
                    reason, detail = _judge_expiry(check, not_after, now)
                except ssl.SSLCertVerificationError as exc:
                    der = await _handshake(self._resolver, check, _unverified(), {}, ["resolve"])
                    not_after = der_summary(der)[0]
                    reason, detail = _rejected(check, exc, der, now)
        except TimeoutError:
            reason, detail = _timed_out(stage[0], check)
        except OSError as exc:  # ssl.SSLError and socket.gaierror included
            reason, detail = _os_failure(exc, stage[0], check)
        except Exception as exc:  # a bug guard: run() must never raise for a target
            reason, detail = Reason.PROTOCOL, f"unexpected {type(exc).__name__}"
        return ProbeResult.judged(
            check.id,
            now,
            reason,
            detail,
            perf_counter() - start,
            degraded=bool(detail),
            phases=phases,
            cert_not_after=not_after,
        )

    async def close(self) -> None:
        """Stop the resolver's threads if it is this probe's own; runs close their connections."""
        if self._owned is not None:
            await self._owned.close()


async def _handshake(
    resolver: Resolver,
    check: TlsCheck,
    context: ssl.SSLContext,
    phases: dict[str, float],
    stage: list[str],
) -> bytes:
    """Connect, handshake, and return the peer certificate (DER); always closes."""
    targets = await addresses(resolver, check.host, check.port, phases)
    stage[0] = "connect"
    mark = perf_counter()
    _reader, writer = await connect(targets, check.port)
    secured = False
    try:
        phases["connect"] = perf_counter() - mark
        stage[0] = "tls"
        mark = perf_counter()
        await writer.start_tls(context, server_hostname=check.server_name or check.host)
        secured = True
        phases["tls"] = perf_counter() - mark
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return der or b""
    finally:
        if secured:
            await _close(writer)
        else:  # a failed handshake leaves nothing to close politely
            writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close politely for a moment, then abort: a peer that stalls cannot hold the socket."""
    writer.close()
    closed = False
    try:
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(_CLOSE_WAIT_S):
                await writer.wait_closed()
                closed = True
    finally:
        if not closed:  # also when the run's own deadline cancels the wait
            writer.transport.abort()


def _unverified() -> ssl.SSLContext:
    """A context that accepts any certificate: only to read one that failed verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _judge_expiry(check: TlsCheck, not_after: float | None, now: float) -> Verdict:
    """Healthy; with a detail (degraded) when fewer than ``min_days_left`` days remain."""
    wanted = check.expect.min_days_left
    if wanted is None or not_after is None:
        return None, ""
    left = (not_after - now) / _DAY
    if left >= wanted:
        return None, ""
    return None, f"certificate expires in {left:.1f} days ({utc_text(not_after)}), below {wanted:g}"


def _rejected(
    check: TlsCheck, exc: ssl.SSLCertVerificationError, der: bytes, now: float
) -> tuple[Reason, str]:
    """Name what is wrong with a certificate that failed verification."""
    not_after, subject, names, issuer = der_summary(der)
    where = _where(check)
    code = exc.verify_code
    if code in _EXPIRED and not_after is not None:
        ago = (now - not_after) / _DAY
        return Reason.CERT_EXPIRED, (
            f"certificate of {where} expired on {utc_text(not_after)} ({ago:.1f} days ago)"
        )
    if code in _HOSTNAME:
        covered = ", ".join(names) or subject or "no name"
        name = check.server_name or check.host
        return Reason.CERT_HOSTNAME, short(f"certificate of {where} is for {covered}, not {name}")
    if code in _UNTRUSTED:
        why = exc.verify_message or "unknown issuer"
        return Reason.CERT_UNTRUSTED, short(
            f"certificate of {where} not trusted: {why} (issuer {issuer or '?'})"
        )
    return Reason.TLS, short(f"certificate of {where} rejected: {exc.verify_message or exc}")


def _os_failure(exc: OSError, stage: str, check: TlsCheck) -> tuple[Reason, str]:
    """Our own exhaustion, a failed handshake, a refusal, or another network error."""
    local = local_failure(exc, resolving=stage == "resolve")
    if local is not None:
        return local
    if isinstance(exc, ssl.SSLError | ConnectionResetError):
        return Reason.TLS, short(f"TLS handshake with {_where(check)} failed: {_why(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        return Reason.CONNECT_REFUSED, f"connection refused by {_where(check)}"
    if stage == "resolve":
        return Reason.DNS, f"cannot resolve {check.host}: {_why(exc)}"
    return Reason.CONNECT_ERROR, short(f"cannot connect to {_where(check)}: {_why(exc)}")


def _timed_out(stage: str, check: TlsCheck) -> tuple[Reason, str]:
    limit = seconds(check.timeout)
    if stage == "resolve":
        return Reason.DNS, f"no DNS answer for {check.host} within {limit}"
    if stage == "connect":
        return Reason.CONNECT_TIMEOUT, f"not connected to {_where(check)} within {limit}"
    return Reason.TIMEOUT, f"no TLS handshake with {_where(check)} within {limit}"


def _why(exc: OSError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc.strerror or exc or type(exc).__name__)


def _where(check: TlsCheck) -> str:
    host = f"[{check.host}]" if ":" in check.host else check.host
    return f"{host}:{check.port}"


KIND = ProbeKind(settings=TlsCheck, factory=TlsProbe)
