"""Prometheus collectors on an injected registry; labels are bounded ids, never free text."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from monitor.probes.base import ProbeResult
from monitor.runtime.checkseries import CheckSeries

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
INCONCLUSIVE_CAUSES = ("loop_stall", "local_resources")  # the scheduler's Cause values
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """Every forewarn_* metric, registered on one registry the daemon owns."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._latency: dict[str, Histogram] = {}
        r = self.registry
        # What every Prometheus user expects of a process: process_*, python_* and python_gc_*.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Gauge(
            "forewarn_build_info",
            "1, labelled with the running forewarn's version and Python's",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(_version(), platform.python_version()).set(1)
        # Info, last result, phases, probe count and state of every check: plain values, not
        # labelled children (52 MB and a lock per update at 10,000 checks).
        self.checks = CheckSeries()
        r.register(self.checks)
        self.probe_latency = Histogram(
            "forewarn_probe_latency_seconds",
            "Probe durations by probe kind",
            ["type"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.incidents_open = Gauge(
            "forewarn_incidents_open", "Open incidents", ["service"], registry=r
        )
        self.notices = Counter(
            "forewarn_notices_total",
            "Notice delivery attempts by outcome",
            ["channel", "kind", "outcome"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "forewarn_outbox_pending", "Notices waiting in the outbox", registry=r
        )
        self.scheduler_lag = Histogram(
            "forewarn_scheduler_lag_seconds",
            "How late probes start after their due time",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.config_last_reload_successful = Gauge(
            "forewarn_config_last_reload_successful",
            "1 if the last config load succeeded",
            registry=r,
        )
        self.probe_inconclusive = Counter(
            "forewarn_probe_inconclusive_total",
            "Probe results set aside: forewarn itself stalled (loop_stall) or ran out of "
            "descriptors, ports or memory (local_resources)",
            ["check", "cause"],
            registry=r,
        )
        self.event_loop_lag = Histogram(
            "forewarn_event_loop_lag_seconds",
            "How late the event loop runs a 50 ms timer",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "forewarn_gc_pause_seconds",
            "Garbage collection pauses",
            ["generation"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.tls_cert_expiry = Gauge(
            "forewarn_tls_cert_expiry_timestamp_seconds",
            "Peer certificate notAfter",
            ["check"],
            registry=r,
        )
        self.connections = Gauge(
            "forewarn_http_connections", "Open client connections", ["listener"], registry=r
        )
        self.connections_refused = Counter(
            "forewarn_http_connections_refused_total",
            "Connections closed at once because a listener's limit was reached",
            ["listener", "limit"],
            registry=r,
        )
        # Several instances on one database (issue 19): who this one is, whether it decides,
        # and how many members it sees live and silent (a silent one is news to ops).
        self.instance_info = Gauge(
            "forewarn_instance_info",
            "1, labelled with this instance's name and location in the cluster",
            ["instance_id", "location"],
            registry=r,
        )
        self.cluster_decider = Gauge(
            "forewarn_cluster_decider", "1 while this instance decides for the cluster", registry=r
        )
        self.cluster_members = Gauge(
            "forewarn_cluster_members",
            "Instances sharing the database, by state: live, or silent (lease not renewed)",
            ["state"],
            registry=r,
        )
        self.set_aside = Counter(
            "forewarn_set_aside_total",
            "Notices or maintenance windows set aside because they could not be used",
            ["kind"],
            registry=r,
        )

    def record(self, result: ProbeResult, kind: str) -> None:
        """Update the series of one judged probe result of a check of probe kind ``kind``."""
        self.checks.record(result.check_id, result.ok, result.duration_s, result.phases)
        latency = self._latency.get(kind)
        if latency is None:
            latency = self._latency[kind] = self.probe_latency.labels(kind)
        latency.observe(result.duration_s)
        if result.cert_not_after is not None:
            self.tls_cert_expiry.labels(result.check_id).set(result.cert_not_after)

    def set_state(self, check_id: str, old: str, new: str) -> None:
        """``forewarn_check_state``: ``check_id`` left ``old`` for ``new``."""
        self.checks.state(check_id, old, new)

    def describe(self, checks: Iterable[tuple[str, str, str]]) -> None:
        """Set ``forewarn_check_info`` to exactly these (check, service, type) triples."""
        self.checks.describe_checks(checks)

    def forget_check(self, check_id: str) -> None:
        """Drop a removed check's series, or its last state would be reported forever."""
        self.checks.forget(check_id)
        per_check: list[tuple[Gauge | Counter, tuple[str, ...]]] = [
            *((self.probe_inconclusive, (check_id, cause)) for cause in INCONCLUSIVE_CAUSES),
            (self.tls_cert_expiry, (check_id,)),
        ]
        for metric, labels in per_check:
            with contextlib.suppress(KeyError):
                metric.remove(*labels)


def _version() -> str:
    """forewarn's installed version, or "unknown" when run from an uninstalled tree."""
    try:
        return metadata.version("forewarn")
    except metadata.PackageNotFoundError:
        return "unknown"
