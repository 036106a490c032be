"""The probe contract: what a probe returns and the closed list of failure reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from monitor.probes.resolver import Resolver


class Reason(StrEnum):
    """Why a probe failed; a closed list so metrics and notices stay bounded."""

    DNS = "dns"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_ERROR = "connect_error"
    TLS = "tls"
    CERT_EXPIRED = "cert_expired"
    CERT_HOSTNAME = "cert_hostname"
    CERT_UNTRUSTED = "cert_untrusted"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    BODY_MISMATCH = "body_mismatch"
    HEADER_MISMATCH = "header_mismatch"
    JSON_MISMATCH = "json_mismatch"
    BANNER_MISMATCH = "banner_mismatch"
    TOO_LARGE = "too_large"
    PROTOCOL = "protocol"
    SOAP_FAULT = "soap_fault"
    XPATH_MISMATCH = "xpath_mismatch"
    NO_HEARTBEAT = "no_heartbeat"
    JOB_FAILED = "job_failed"
    NXDOMAIN = "nxdomain"
    # forewarn itself is out of descriptors, ports or memory: says nothing about the target,
    # so such a run is set aside as inconclusive and never reaches the detector.
    LOCAL_RESOURCES = "local_resources"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe run: a plain picklable value."""

    check_id: str
    at: float  # UNIX time the probe started
    ok: bool
    degraded: bool = False
    reason: Reason | None = None
    detail: str = ""
    duration_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    cert_not_after: float | None = None  # UNIX time the peer certificate expires (TLS only)

    @classmethod
    def judged(
        cls,
        check_id: str,
        at: float,
        reason: Reason | None,
        detail: str,
        duration_s: float,
        *,
        degraded: bool = False,
        phases: dict[str, float] | None = None,
        cert_not_after: float | None = None,
    ) -> ProbeResult:
        """A result whose success follows from its reason: no reason means the target is fine."""
        return cls(
            check_id=check_id,
            at=at,
            ok=reason is None,
            degraded=degraded and reason is None,
            reason=reason,
            detail=detail,
            duration_s=duration_s,
            phases=phases or {},
            cert_not_after=cert_not_after,
        )


class Probe(Protocol):
    """Runs one check against its target; never raises for a target's failure."""

    async def run(self, check: Any, now: float) -> ProbeResult:
        """Probe the target of ``check`` and describe what happened."""
        ...

    async def close(self) -> None:
        """Release shared resources (resolver threads, connections)."""
        ...


class Pings(Protocol):
    """What heartbeat probes read of the pings the web hooks record (``HeartbeatBook``)."""

    @property
    def started_at(self) -> float:
        """Stands for the last ping of a check that has had none yet."""
        ...

    def last_ping(self, check_id: str) -> float | None:
        """When the last good ping came, if any."""
        ...

    def last_failure(self, check_id: str) -> float | None:
        """When the job last reported a failure, if it did."""
        ...


@dataclass(frozen=True)
class ProbeContext:
    """What the daemon hands every probe kind when it builds it: shared, plain objects."""

    heartbeats: Pings  # pings received by the web hooks, read by heartbeat checks
    timezone: str = "UTC"  # daemon.timezone: how times are written in details
    # Host names to addresses for the http, soap, transaction, tcp and tls kinds. None: each
    # probe uses the system's (getaddrinfo on threads of its own, see resolver.py).
    resolver: Resolver | None = None


@dataclass(frozen=True)
class ProbeKind:
    """One entry of the ``PROBES`` registry: a check kind's settings model and its probe."""

    settings: type[Any]  # a CheckBase subclass with ``type: Literal[<kind>]``
    factory: Any  # (ProbeContext) -> Probe, called once per daemon; shared by its checks
