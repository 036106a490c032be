"""The per-check series held as plain values expose what prometheus_client's children did."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

from monitor.probes.base import ProbeResult
from monitor.runtime.metrics import Metrics


def labelled_reference() -> tuple[CollectorRegistry, dict[str, Any]]:
    """The same series as labelled prometheus_client metrics, as forewarn had them."""
    r = CollectorRegistry()
    return r, {
        "info": Gauge("forewarn_check_info", "i", ["check", "service", "type"], registry=r),
        "success": Gauge("forewarn_probe_success", "s", ["check"], registry=r),
        "duration": Gauge("forewarn_probe_duration_seconds", "d", ["check"], registry=r),
        "phase": Gauge(
            "forewarn_probe_phase_duration_seconds", "p", ["check", "phase"], registry=r
        ),
        "probes": Counter("forewarn_probes_total", "n", ["check"], registry=r),
        "state": Gauge("forewarn_check_state", "st", ["check", "state"], registry=r),
    }


def samples(registry: CollectorRegistry) -> set[str]:
    """Sample lines of the per-check families, creation times left out."""
    wanted = (
        "forewarn_check_",
        "forewarn_probe_success",
        "forewarn_probe_duration",
        "forewarn_probe_phase",
        "forewarn_probes_total",
    )
    text = generate_latest(registry).decode()
    return {line for line in text.splitlines() if line.startswith(wanted)}


def test_plain_series_expose_the_samples_labelled_children_did() -> None:
    """Results, phases, state changes and a forgotten check: the same sample lines."""
    metrics, (registry, ref) = Metrics(), labelled_reference()
    metrics.describe([("a", "web", "http"), ("b", "web", "tcp")])
    ref["info"].labels("a", "web", "http").set(1)
    ref["info"].labels("b", "web", "tcp").set(1)
    steps = [("a", True, 0.01, {"connect": 0.002, "processing": 0.003}), ("b", False, 1.0, {})]
    steps += [("a", False, 0.5, {"connect": 0.004}), ("c", True, 0.2, {"transfer": 0.1})]
    for check_id, ok, seconds, phases in steps:
        metrics.record(ProbeResult(check_id, 0.0, ok, duration_s=seconds, phases=phases), "http")
        ref["success"].labels(check_id).set(1 if ok else 0)
        ref["duration"].labels(check_id).set(seconds)
        ref["probes"].labels(check_id).inc()
        for phase, value in phases.items():
            ref["phase"].labels(check_id, phase).set(value)
    for check_id, old, new in [("a", "unknown", "up"), ("a", "up", "down"), ("b", "unknown", "up")]:
        metrics.set_state(check_id, old, new)
        ref["state"].labels(check_id, old).set(0)
        ref["state"].labels(check_id, new).set(1)
    metrics.forget_check("c")
    for metric in ("success", "duration", "probes"):
        ref[metric].remove("c")
    ref["phase"].remove("c", "transfer")
    assert samples(metrics.registry) == samples(registry)
    assert 'forewarn_check_state{check="a",state="down"} 1.0' in samples(registry)
