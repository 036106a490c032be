"""How a request-based run ends: its timeline, one deadline, and the reason and one-line
detail it ends with, whatever stopped it (the deadline, a refusal, a reset, a bad answer)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from monitor.probes.base import Reason
from monitor.probes.http1 import ProbeFailure
from monitor.probes.local import local_failure

_DETAIL_LIMIT = 200

Verdict = tuple[Reason | None, str]
"""What a run concluded: no reason when healthy, and a one-line detail."""


@dataclass(slots=True)
class Timeline:
    """Marks of one run, written by the client as it goes; perf_counter seconds.

    Phases are sums, so redirects that open several connections add up instead of
    overwriting each other.
    """

    dns_start: float | None = None  # set only while a resolution is in flight
    conn_start: float | None = None  # set only while a connection is being made
    resolve: float | None = None
    connect: float | None = None
    ready: float | None = None  # when the last connection became usable
    headers_at: float | None = None
    body_end: float | None = None
    cert_not_after: float | None = None  # the https peer's certificate expiry, UNIX time

    def phases(self) -> dict[str, float]:
        """The phases that actually happened, in seconds."""
        out: dict[str, float] = {}
        if self.resolve is not None:
            out["resolve"] = self.resolve
        if self.connect is not None:
            out["connect"] = self.connect  # includes the TLS handshake for https
        if self.headers_at is not None and self.ready is not None:
            out["processing"] = max(0.0, self.headers_at - self.ready)
        if self.body_end is not None and self.headers_at is not None:
            out["transfer"] = self.body_end - self.headers_at
        return out


async def attempt(
    work: Callable[[], Awaitable[Verdict]], line: Timeline, deadline: float, limit: float
) -> Verdict:
    """Run ``work`` until the loop-time ``deadline``; map whatever stops it to a reason."""
    try:
        async with asyncio.timeout_at(deadline):
            return await work()
    except TimeoutError:
        return timed_out(line, limit)
    except ProbeFailure as failure:
        return failure.reason, failure.detail
    except OSError as exc:
        return exchange_failure(exc)
    except Exception as exc:  # a bug guard: run() must never raise for a target
        return Reason.PROTOCOL, f"unexpected {type(exc).__name__}"


def timed_out(line: Timeline, timeout: float) -> Verdict:
    """Name the phase the deadline caught the request in."""
    limit = seconds(timeout)
    if line.dns_start is not None:
        return Reason.DNS, f"no DNS answer within {limit}"
    if line.conn_start is not None or line.ready is None:
        return Reason.CONNECT_TIMEOUT, f"not connected within {limit}"
    if line.headers_at is None or line.headers_at < line.ready:
        return Reason.TIMEOUT, f"no response within {limit}"
    return Reason.TIMEOUT, f"body not complete within {limit}"


def resolve_failure(exc: OSError, host: str) -> tuple[Reason, str]:
    """Why ``host`` did not resolve: our own exhaustion, or the name's fault."""
    local = local_failure(exc, resolving=True)
    if local is not None:
        return local
    return Reason.DNS, f"cannot resolve {host}: {_os_why(exc)}"


def connect_failure(exc: OSError, where: str) -> tuple[Reason, str]:
    """Why connecting to ``where`` (host:port) failed; never the URL or its headers."""
    local = local_failure(exc)
    if local is not None:  # our own exhaustion, not the target's doing
        return local
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or type(exc).__name__
        return Reason.TLS, short(f"certificate rejected by {where}: {why}")
    if isinstance(exc, ssl.SSLError):
        return Reason.TLS, short(f"TLS handshake with {where} failed: {exc.reason or _os_why(exc)}")
    if isinstance(exc, ConnectionRefusedError):
        return Reason.CONNECT_REFUSED, f"connection refused by {where}"
    return Reason.CONNECT_ERROR, short(f"cannot connect to {where}: {_os_why(exc)}")


def exchange_failure(exc: OSError) -> Verdict:
    """Why an open connection failed (reset, a TLS alert)."""
    local = local_failure(exc)
    if local is not None:
        return local
    if isinstance(exc, ssl.SSLError):
        return Reason.TLS, short(f"TLS failure: {exc.reason or _os_why(exc)}")
    return Reason.CONNECT_ERROR, short(f"connection error: {_os_why(exc)}")


def _os_why(exc: OSError) -> str:
    """The operating system's words for an error (never a URL: the caller names host:port)."""
    return exc.strerror or str(exc) or type(exc).__name__


def short(text: str) -> str:
    """One line, at most ~200 characters."""
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_LIMIT else line[: _DETAIL_LIMIT - 1] + "…"


def seconds(value: float) -> str:
    """``2s`` or ``50ms``, the way durations are written in checks.yaml."""
    return f"{value:g}s" if value >= 1 else f"{value * 1000:g}ms"
