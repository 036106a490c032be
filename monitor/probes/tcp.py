"""TCP probe: connect, optionally read a banner and match it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from functools import lru_cache
from time import perf_counter
from typing import Annotated, Literal

from pydantic import Field, field_validator

from monitor.core.fields import CheckBase, StrictModel
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult, Reason
from monitor.probes.local import local_failure
from monitor.probes.resolver import chosen
from monitor.probes.sockets import addresses, connect

_BANNER_LIMIT = 4096
_EXCERPT = 80


@lru_cache(maxsize=1024)
def _pattern(banner: str) -> re.Pattern[str]:
    """Compile a banner expression once, however many runs use it."""
    return re.compile(banner)


class TcpExpect(StrictModel):
    """What a healthy TCP service shows right after connecting."""

    banner: str | None = None  # a regular expression searched in the first bytes received

    @field_validator("banner")
    @classmethod
    def _valid_regex(cls, banner: str | None) -> str | None:
        if banner is not None:
            try:
                _pattern(banner)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return banner


class TcpCheck(CheckBase):
    """Settings of a ``tcp`` check."""

    type: Literal["tcp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    expect: TcpExpect = TcpExpect()


class TcpProbe:
    """Runs ``tcp`` checks; holds no per-run state, so one instance serves every check."""

    def __init__(self, context: ProbeContext | None = None) -> None:
        """Create the probe; names are resolved by the context's resolver, else the system's."""
        given = context.resolver if context is not None else None
        self._resolver, self._owned = chosen(given)

    async def run(self, check: TcpCheck, now: float) -> ProbeResult:
        """Connect to ``check.host:check.port`` and, if asked, match the banner."""
        phases: dict[str, float] = {}
        received = bytearray()
        stage = "resolve"  # where the deadline caught us, if it does
        writer: asyncio.StreamWriter | None = None
        reason: Reason | None = None
        detail = ""
        start = perf_counter()
        try:
            async with asyncio.timeout(check.timeout):
                targets = await addresses(self._resolver, check.host, check.port, phases)
                stage = "connect"
                mark = perf_counter()
                reader, writer = await connect(targets, check.port)
                phases["connect"] = perf_counter() - mark
                if check.expect.banner is not None:
                    stage = "banner"
                    pattern = _pattern(check.expect.banner)
                    if not await _read_banner(reader, pattern, received):
                        reason, detail = Reason.BANNER_MISMATCH, _mismatch(received, pattern)
        except TimeoutError:
            reason, detail = _timed_out(stage, check, received)
        except ConnectionRefusedError:
            reason, detail = Reason.CONNECT_REFUSED, f"connection refused by {_where(check)}"
        except OSError as exc:  # socket.gaierror included
            reason, detail = _os_failure(exc, stage, check)
        except Exception as exc:  # a bug guard: run() must never raise for a target
            reason, detail = Reason.PROTOCOL, f"unexpected {type(exc).__name__}"
        finally:
            if writer is not None:
                await _close(writer)
        return ProbeResult.judged(
            check.id, now, reason, detail, perf_counter() - start, phases=phases
        )

    async def close(self) -> None:
        """Stop the resolver's threads if it is this probe's own; runs close their connections."""
        if self._owned is not None:
            await self._owned.close()


async def _read_banner(
    reader: asyncio.StreamReader, pattern: re.Pattern[str], received: bytearray
) -> bool:
    """Read into ``received`` until ``pattern`` matches, the peer closes, or 4 KiB."""
    while len(received) < _BANNER_LIMIT:
        chunk = await reader.read(_BANNER_LIMIT - len(received))
        if not chunk:
            return False
        received += chunk
        # Decode the whole buffer each time so a character split across reads still matches.
        if pattern.search(received.decode("utf-8", errors="replace")):
            return True
    return False


def _timed_out(stage: str, check: TcpCheck, received: bytearray) -> tuple[Reason, str]:
    """Name the phase the deadline caught the probe in."""
    limit = _seconds(check.timeout)
    if stage == "resolve":
        return Reason.DNS, f"no DNS answer for {check.host} within {limit}"
    if stage == "connect":
        return Reason.CONNECT_TIMEOUT, f"not connected to {_where(check)} within {limit}"
    # A silent service is hung (timeout); one that talks but says the wrong thing is not
    # the service expected (banner_mismatch), whether it stopped talking or not.
    if received and check.expect.banner is not None:
        return Reason.BANNER_MISMATCH, _mismatch(received, _pattern(check.expect.banner))
    return Reason.TIMEOUT, f"no banner from {_where(check)} within {limit}"


def _os_failure(exc: OSError, stage: str, check: TcpCheck) -> tuple[Reason, str]:
    """Our own exhaustion, a name that does not resolve, or another connection error."""
    local = local_failure(exc, resolving=stage == "resolve")
    if local is not None:
        return local
    if isinstance(exc, socket.gaierror):
        return Reason.DNS, f"cannot resolve {check.host}: {exc.strerror}"
    why = exc.strerror or type(exc).__name__
    return Reason.CONNECT_ERROR, f"cannot connect to {_where(check)}: {why}"


def _mismatch(received: bytearray, pattern: re.Pattern[str]) -> str:
    """A one-line detail quoting the start of what the service sent."""
    if not received:
        return f"connection closed before a banner matching {pattern.pattern!r}"
    text = received[:_EXCERPT].decode("utf-8", errors="replace")
    more = "…" if len(received) > _EXCERPT else ""
    return f"banner {text!r}{more} does not match {pattern.pattern!r}"


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close the connection; a peer that already went away is no failure of ours."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _where(check: TcpCheck) -> str:
    """``host:port`` with IPv6 literals bracketed."""
    host = f"[{check.host}]" if ":" in check.host else check.host
    return f"{host}:{check.port}"


def _seconds(value: float) -> str:
    """``2s`` or ``50ms``, the way durations are written in checks.yaml."""
    return f"{value:g}s" if value >= 1 else f"{value * 1000:g}ms"


KIND = ProbeKind(settings=TcpCheck, factory=TcpProbe)
