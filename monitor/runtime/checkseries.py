"""The per-check series of /metrics, held as plain values and turned into samples on a scrape.

prometheus_client's labelled children cost about 600 bytes and a lock each; with seven a check
they were 52 MB at 10,000 checks, and a lookup with its lock on every result. Here each check is
one small object updated in place; a scrape (on a thread) reads copies of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _Check:
    """The values of one check's series."""

    __slots__ = ("created", "duration", "phases", "probes", "states", "success")

    def __init__(self) -> None:
        self.success: float | None = None
        self.duration: float | None = None
        self.probes = 0.0
        self.created = 0.0  # when its first result came: forewarn_probes_created
        self.phases: dict[str, float] = {}
        self.states: dict[str, float] = {}


class CheckSeries(Collector):
    """The info, last result, phases, probe count and state series of every check."""

    def __init__(self) -> None:
        self.info: dict[str, tuple[str, str]] = {}  # check → (service, type)
        self.checks: dict[str, _Check] = {}

    def record(self, check_id: str, ok: bool, duration: float, phases: dict[str, float]) -> None:
        """One judged result of ``check_id``."""
        check = self.checks.get(check_id)
        if check is None:
            check = self.checks[check_id] = _Check()
        if not check.probes:
            check.created = time.time()
        check.success = 1.0 if ok else 0.0
        check.duration = duration
        check.probes += 1
        if phases:
            check.phases.update(phases)

    def state(self, check_id: str, old: str, new: str) -> None:
        """``check_id`` went from ``old`` to ``new``: 0 for the one, 1 for the other."""
        check = self.checks.get(check_id)
        if check is None:
            check = self.checks[check_id] = _Check()
        check.states[old] = 0.0
        check.states[new] = 1.0

    def describe_checks(self, checks: Iterable[tuple[str, str, str]]) -> None:
        """forewarn_check_info: exactly these (check, service, type) triples."""
        self.info = {check_id: (service, kind) for check_id, service, kind in checks}

    def forget(self, check_id: str) -> None:
        """Drop every series of a removed check."""
        self.checks.pop(check_id, None)

    def describe(self) -> list[Metric]:
        """Nothing ahead of a scrape: the registry need not call collect() on registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The samples, from copies: the loop keeps updating while a thread scrapes."""
        info = GaugeMetricFamily(
            "forewarn_check_info",
            "1 per configured check: join probe series to their service and kind on `check`",
            labels=["check", "service", "type"],
        )
        for check_id, (service, kind) in dict(self.info).items():
            info.add_metric([check_id, service, kind], 1.0)
        success = GaugeMetricFamily(
            "forewarn_probe_success", "1 if the last probe succeeded", labels=["check"]
        )
        duration = GaugeMetricFamily(
            "forewarn_probe_duration_seconds", "Duration of the last probe", labels=["check"]
        )
        phases = GaugeMetricFamily(
            "forewarn_probe_phase_duration_seconds",
            "Phase durations of the last probe",
            labels=["check", "phase"],
        )
        probes = CounterMetricFamily(
            "forewarn_probes_total",
            "Probe results judged, inconclusive ones excluded",
            labels=["check"],
        )
        states = GaugeMetricFamily(
            "forewarn_check_state", "1 for the check's current state", labels=["check", "state"]
        )
        for check_id, check in dict(self.checks).items():
            if check.probes:
                success.add_metric([check_id], check.success or 0.0)
                duration.add_metric([check_id], check.duration or 0.0)
                probes.add_metric([check_id], check.probes, created=check.created)
            for phase, seconds in dict(check.phases).items():
                phases.add_metric([check_id, phase], seconds)
            for status, value in dict(check.states).items():
                states.add_metric([check_id, status], value)
        yield from (info, success, duration, phases, probes, states)
