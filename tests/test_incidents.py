"""Incident lifecycle as tables of steps with explicit ``now``."""

from __future__ import annotations

import pytest

from monitor.detector import CheckStatus
from monitor.incidents import (
    ChangeKind,
    Incident,
    IncidentStatus,
    ServiceView,
    Timing,
    apply,
    incident_id,
)

UP, DOWN, UNKNOWN = CheckStatus.UP, CheckStatus.DOWN, CheckStatus.UNKNOWN
K = ChangeKind


def play(steps: list[tuple[float, CheckStatus]], timing: Timing) -> list[tuple[float, list[str]]]:
    """Feed (now, service status) steps; return the change kinds produced at each step."""
    open_incidents: dict[str, Incident] = {}
    view = ServiceView("tracking", UP, 0.0)
    out = []
    for now, status in steps:
        if status is not view.status:
            first = now if status is DOWN else view.first_failure_at
            view = ServiceView("tracking", status, now, first_failure_at=first)
        changes = apply(open_incidents, {"tracking": view}, now, lambda _: timing)
        for change in changes:
            if change.incident.status is IncidentStatus.RESOLVED:
                open_incidents.pop("tracking", None)
            else:
                open_incidents["tracking"] = change.incident
        out.append((now, [c.kind.value for c in changes]))
    return out


FAST = Timing(customer_delay=0.0, update_every=600.0, stable_for=300.0)
DELAYED = Timing(customer_delay=120.0, update_every=600.0, stable_for=300.0)


@pytest.mark.parametrize(
    ("timing", "steps", "expected"),
    [
        pytest.param(
            FAST,
            [(0, UP), (10, DOWN), (500, DOWN), (610, DOWN), (900, UP), (1100, UP), (1200, UP)],
            [
                (0, []),
                (10, ["opened", "announced"]),
                (500, []),
                (610, ["update"]),
                (900, ["recovering"]),
                (1100, []),
                (1200, ["resolved"]),
            ],
            id="open-announce-update-recover-resolve",
        ),
        pytest.param(
            FAST,
            [(10, DOWN), (100, UP), (200, DOWN), (400, UP), (700, UP)],
            [
                (10, ["opened", "announced"]),
                (100, ["recovering"]),
                (200, ["relapsed"]),
                (400, ["recovering"]),
                (700, ["resolved"]),
            ],
            id="relapse-reopens-without-new-announcement",
        ),
        pytest.param(
            DELAYED,
            [(10, DOWN), (60, DOWN), (100, UP), (500, UP)],
            [(10, ["opened"]), (60, []), (100, ["resolved"]), (500, [])],
            id="recovery-before-customer-delay-cancels-notice",
        ),
        pytest.param(
            DELAYED,
            [(10, DOWN), (60, DOWN), (130, DOWN), (700, DOWN), (731, DOWN)],
            [(10, ["opened"]), (60, []), (130, ["announced"]), (700, []), (731, ["update"])],
            id="customer-delay-then-cadence-from-announcement",
        ),
        pytest.param(
            FAST,
            [(10, DOWN), (20, UNKNOWN), (650, UNKNOWN)],
            [(10, ["opened", "announced"]), (20, []), (650, ["update"])],
            id="unknown-after-restart-is-not-recovery",
        ),
        pytest.param(
            Timing(customer_delay=0.0, update_every=100.0, stable_for=300.0),
            [(10, DOWN), (50, UP), (111, UP), (211, UP), (350, UP)],
            [
                (10, ["opened", "announced"]),
                (50, ["recovering"]),
                (111, ["update"]),
                (211, ["update"]),
                (350, ["resolved"]),
            ],
            id="cadence-continues-while-monitoring-and-stops-at-resolution",
        ),
    ],
)
def test_lifecycle_table(timing: Timing, steps: list, expected: list) -> None:
    """Each row plays service states over time and checks the incident changes."""
    assert play([(float(t), s) for t, s in steps], timing) == [
        (float(t), kinds) for t, kinds in expected
    ]


def test_sequence_counts_customer_messages_and_resolution_keeps_window() -> None:
    """Announcement, update and resolution get sequences 1, 2, 3; the window is measured."""
    view_down = ServiceView("tracking", DOWN, 100.0, first_failure_at=95.0, reason="timeout")
    open_incidents: dict[str, Incident] = {}
    seen = []
    for now, view in [
        (100.0, view_down),
        (700.0, view_down),
        (800.0, ServiceView("tracking", UP, 800.0)),
        (1100.0, ServiceView("tracking", UP, 800.0)),
    ]:
        for change in apply(open_incidents, {"tracking": view}, now, lambda _: FAST):
            open_incidents["tracking"] = change.incident
            seen.append((change.kind, change.incident.sequence))
    assert seen == [
        (K.OPENED, 0),
        (K.ANNOUNCED, 1),
        (K.UPDATE, 2),
        (K.RECOVERING, 2),
        (K.RESOLVED, 3),
    ]
    final = open_incidents["tracking"]
    assert (final.first_failure_at, final.recovered_at, final.resolved_at) == (95.0, 800.0, 1100.0)
    assert final.id == incident_id("tracking", 95.0) == "tracking-19700101T000135"
    assert final.reason == "timeout"


def test_next_update_is_promised_at_announcement() -> None:
    """The first notice already knows when the next update is due."""
    view = ServiceView("tracking", DOWN, 50.0, first_failure_at=40.0)
    changes = apply({}, {"tracking": view}, 50.0, lambda _: FAST)
    announced = next(c for c in changes if c.kind is K.ANNOUNCED)
    assert announced.incident.next_update_at == 650.0
    assert announced.incident.customers_told_at == 50.0
