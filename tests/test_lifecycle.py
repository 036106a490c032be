"""Incident lifecycle as tables of steps with an explicit ``now``, played through ``apply``.

Each row is ``(clock, {service: state}, expected changes)``. Clocks are Paris wall time on
2026-11-22 unless dated. A state is ``up``, ``down``, ``unknown`` or ``degraded``; a leading
``~`` marks the service as flapping, ``!`` as never seen up, and ``@mw-42`` a maintenance
overrun. Services not named in
a row keep their previous view; a service keeps its ``since`` while its status stays the same,
and a confirmed ``down`` began failing ``CONFIRM`` seconds before the row (the retries).
Changes read ``"<kind> <services>"``: the joining services for ``joined``, else those covered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentChange,
    IncidentStatus,
    Rules,
    ServiceView,
    Timing,
    incident_id,
)
from monitor.domain.lifecycle import apply

PARIS = ZoneInfo("Europe/Paris")
CONFIRM = 20.0  # a check is confirmed down this long after its first failed probe
MINUTE, HOUR = 60.0, 3600.0

Row = tuple[str, Mapping[str, "str | ServiceView"], list[str]]
Canary = float | None | Mapping[str, float]


def at(clock: str) -> float:
    """``"13:05"``, ``"13:05:30"`` or ``"2026-11-20 09:00"`` in Paris, as a UTC epoch."""
    day, _, time = clock.rpartition(" ")
    year, month, date = map(int, (day or "2026-11-22").split("-"))
    hour, minute, *second = map(int, time.split(":"))
    stamp = datetime(year, month, date, hour, minute, *second, tzinfo=PARIS)
    return stamp.timestamp()


def make_rules(
    default: Timing,
    *,
    digest_window: float = 0.0,
    depends_on: Mapping[str, set[str]] | None = None,
    audience: Mapping[str, set[str]] | None = None,
    **per_service: Timing,
) -> Rules:
    """Rules with one timing for every service but those named in ``per_service``.

    ``audience`` maps services to their customers; by default one customer reads them all.
    """
    closure = {s: frozenset(ancestors) for s, ancestors in (depends_on or {}).items()}
    readers = audience or {s: {"everyone"} for s in (T, P, L, R)}
    return Rules(
        timing=lambda s: per_service.get(s, default),
        depends_on=closure,
        digest_window=digest_window,
        audience={s: frozenset(ids) for s, ids in readers.items()},
    )


def view(service: str, state: str, now: float, previous: ServiceView | None) -> ServiceView:
    """The service's view from a row's short state, as the engine would roll it up."""
    flapping, never_up = state.startswith("~"), state.startswith("!")
    name, _, maintenance = state.lstrip("~!").partition("@")
    status = CheckStatus(name)
    same = previous is not None and previous.status is status
    since = previous.since if previous is not None and same else now
    down = status is CheckStatus.DOWN
    return ServiceView(
        service_id=service,
        status=status,
        since=since,
        first_failure_at=since - CONFIRM if down else None,
        reason="timeout" if down else "",
        check_id=f"{service}-ws" if down else "",
        flapping=flapping,
        maintenance_id=maintenance,
        never_up=never_up and down,
    )


def label(change: IncidentChange) -> str:
    """``"joined labels"``, ``"announced platform+tracking"``: the kind and its services."""
    joined = change.kind is ChangeKind.JOINED
    return f"{change.kind} {'+'.join(change.services if joined else change.incident.covered)}"


@dataclass
class Run:
    """What a played table produced."""

    log: list[tuple[str, list[str]]] = field(default_factory=list)
    changes: list[IncidentChange] = field(default_factory=list)
    open: dict[str, Incident] = field(default_factory=dict)  # keyed by incident id
    closed: dict[str, Incident] = field(default_factory=dict)

    def incident(self) -> Incident:
        """The one incident the table was about, open or resolved."""
        (only,) = {**self.closed, **self.open}.values()
        return only


def play(rows: Sequence[Row], rules: Rules, canary: Canary = None) -> Run:
    """Feed each row through ``apply`` and record its changes; resolved incidents leave.

    ``canary`` is the canary's last success for every row, or ``{clock: last success}``
    applying from that row on; None means no canary is configured.
    """
    run = Run()
    views: dict[str, ServiceView] = {}
    gate = None if isinstance(canary, Mapping) else canary
    for clock, states, _ in rows:
        now = at(clock)
        for service, state in states.items():
            if isinstance(state, ServiceView):
                views[service] = state
            else:
                views[service] = view(service, state, now, views.get(service))
        if isinstance(canary, Mapping):
            gate = canary.get(clock, gate)
        changes = apply(run.open, views, now, rules, canary_ok_at=gate)
        for change in changes:
            if change.incident.resolved_at is None:
                run.open[change.incident.id] = change.incident
            else:
                run.open.pop(change.incident.id, None)
                run.closed[change.incident.id] = change.incident
        run.log.append((clock, [label(c) for c in changes]))
        run.changes.extend(changes)
    return run


def expected(rows: Sequence[Row]) -> list[tuple[str, list[str]]]:
    """The per-step changes a table expects, in ``Run.log``'s shape."""
    return [(clock, changes) for clock, _, changes in rows]


T, P, L, R = "tracking", "platform", "labels", "returns"
FAST = Timing(customer_delay=0.0, update_every=30 * MINUTE, stable_for=10 * MINUTE)
DELAYED = Timing(customer_delay=2 * MINUTE, update_every=30 * MINUTE, stable_for=10 * MINUTE)

# 1. Lifecycle ---------------------------------------------------------------------------

CADENCE: list[Row] = [
    ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
    ("13:29:59", {}, []),
    ("13:30", {}, ["update tracking"]),
    ("14:00", {}, ["update tracking"]),  # no news: the promise is kept anyway
    ("14:10", {T: "up"}, ["recovering tracking"]),
    ("14:19:59", {}, []),
    ("14:20", {}, ["resolved tracking"]),
    ("14:30", {}, []),  # the 14:30 promise ends with the resolution
    ("15:00", {}, []),
]
RELAPSE: list[Row] = [
    ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
    ("13:10", {T: "up"}, ["recovering tracking"]),
    ("13:15", {T: "down"}, ["relapsed tracking"]),
    ("13:25", {T: "up"}, ["recovering tracking"]),
    ("13:30", {}, ["update tracking"]),  # the cadence goes on while monitoring
    ("13:34:59", {}, []),
    ("13:35", {}, ["resolved tracking"]),
]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(CADENCE, id="announce-at-once-cadence-recover-resolve"),
        pytest.param(RELAPSE, id="relapse-while-monitoring-reopens-without-new-notice"),
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:05", {T: "unknown"}, []),
                ("13:30", {}, ["update tracking"]),
                ("13:40", {T: "up"}, ["recovering tracking"]),
                ("13:50", {}, ["resolved tracking"]),
            ],
            id="unknown-is-neither-failure-nor-recovery",
        ),
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:10", {T: "degraded"}, ["recovering tracking"]),
                ("13:20", {}, ["resolved tracking"]),
            ],
            id="degraded-answers-so-it-recovers",
        ),
    ],
)
def test_lifecycle(rows: list[Row]) -> None:
    """An outage opens and is announced at once, keeps its cadence, recovers and resolves."""
    assert play(rows, make_rules(FAST)).log == expected(rows)


def test_each_customer_message_bumps_sequence_and_promises_the_next() -> None:
    """Sequence counts customer messages; each promises the next update update_every later."""
    run = play(CADENCE, make_rules(FAST))
    steps = [(c.kind, c.incident.sequence, c.incident.next_update_at) for c in run.changes]
    assert steps == [
        (ChangeKind.OPENED, 0, None),
        (ChangeKind.ANNOUNCED, 1, at("13:30")),
        (ChangeKind.UPDATE, 2, at("14:00")),
        (ChangeKind.UPDATE, 3, at("14:30")),
        (ChangeKind.RECOVERING, 3, at("14:30")),
        (ChangeKind.RESOLVED, 4, None),
    ]


def test_relapse_keeps_one_incident_and_resolution_keeps_the_measured_window() -> None:
    """A relapse keeps the id and the single first notice; resolution keeps the window."""
    run = play(RELAPSE, make_rules(FAST))
    assert {c.incident.id for c in run.changes} == {"tracking-20261122T115940-000"}
    assert [c.kind for c in run.changes].count(ChangeKind.ANNOUNCED) == 1
    final = run.incident()
    assert final.id == incident_id(T, at("12:59:40"))
    assert final.status is IncidentStatus.RESOLVED
    assert (final.first_failure_at, final.recovered_at, final.resolved_at) == (
        at("12:59:40"),
        at("13:25"),
        at("13:35"),
    )
    assert (final.customers_told_at, final.sequence, final.reason) == (at("13:00"), 3, "timeout")


# 2. customer_delay -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "told_at"),
    [
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:01", {}, []),
                ("13:01:30", {T: "up"}, ["resolved tracking"]),
                ("13:02", {}, []),
                ("13:30", {}, []),
            ],
            None,
            id="recovery-before-delay-resolves-quietly",
        ),
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:01:40", {T: "up"}, ["resolved tracking"]),
            ],
            None,
            id="recovery-on-the-due-tick-is-still-quiet",
        ),
        pytest.param(
            [
                # first failure 12:59:40 (confirmed at 13:00): due two minutes after it
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:01:39", {}, []),
                ("13:01:40", {}, ["announced tracking"]),
                ("13:31:39", {}, []),
                ("13:31:40", {}, ["update tracking"]),
            ],
            "13:01:40",
            id="still-down-announced-exactly-at-first-failure-plus-delay",
        ),
    ],
)
def test_customer_delay(rows: list[Row], told_at: str | None) -> None:
    """Customers hear once an outage has lasted customer_delay, never if it recovered first."""
    run = play(rows, make_rules(DELAYED))
    assert run.log == expected(rows)
    incident = run.incident()
    assert incident.customers_told_at == (None if told_at is None else at(told_at))
    assert incident.sequence == (0 if told_at is None else 2)


# 3. Dependencies ---------------------------------------------------------------------------

DEPENDS = {T: {P}, L: {P}, R: {L, P}}  # returns → labels → platform, as a transitive closure
ALL_DOWN = {P: "down", T: "down", L: "down"}


@pytest.mark.parametrize(
    ("timing", "rows", "still_open"),
    [
        pytest.param(
            FAST,
            [
                (
                    "13:00",
                    ALL_DOWN,
                    [
                        "opened platform",
                        "joined labels",
                        "joined tracking",
                        "announced platform+labels+tracking",
                    ],
                ),
            ],
            {P: (("platform", "labels", "tracking"), ("platform", "labels", "tracking"))},
            id="same-tick-one-incident-rooted-at-the-dependency",
        ),
        pytest.param(
            FAST,
            [
                ("13:00", {P: "down"}, ["opened platform", "announced platform"]),
                ("13:05", {T: "down"}, ["joined tracking"]),
            ],
            {P: (("platform", "tracking"), ("platform", "tracking"))},
            id="dependant-joins-announced-incident-and-is-announced",
        ),
        pytest.param(
            DELAYED,
            [
                ("13:00", {P: "down"}, ["opened platform"]),
                ("13:01", {T: "down"}, ["joined tracking"]),
                ("13:02", {}, ["announced platform+tracking"]),
            ],
            {P: (("platform", "tracking"), ("platform", "tracking"))},
            id="dependant-joins-untold-incident-and-is-announced-with-it",
        ),
        pytest.param(
            DELAYED,
            [
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:01", {P: "down"}, ["merged tracking", "opened platform+tracking"]),
                ("13:03", {}, ["announced platform+tracking"]),
            ],
            {P: (("platform", "tracking"), ("platform", "tracking"))},
            id="untold-dependant-incident-merged-into-the-dependency",
        ),
        pytest.param(
            FAST,
            [
                (
                    "13:00",
                    ALL_DOWN,
                    [
                        "opened platform",
                        "joined labels",
                        "joined tracking",
                        "announced platform+labels+tracking",
                    ],
                ),
                ("13:10", {P: "up"}, []),
                ("13:15", {L: "up"}, []),
                ("13:20", {T: "up"}, ["recovering platform+labels+tracking"]),
                ("13:29:59", {}, []),
                ("13:30", {}, ["resolved platform+labels+tracking"]),
            ],
            {},
            id="recovers-only-when-every-covered-service-answers",
        ),
        pytest.param(
            FAST,
            [
                ("13:00", {P: "down"}, ["opened platform", "announced platform"]),
                ("13:05", {T: "down"}, ["joined tracking"]),
                ("13:10", {T: "unknown"}, []),
                ("13:15", {P: "up"}, []),
            ],
            {P: (("platform", "tracking"), ("platform", "tracking"))},
            id="a-covered-service-in-doubt-holds-recovery",
        ),
        pytest.param(
            FAST,
            [("13:00", {P: "up", T: "down"}, ["opened tracking", "announced tracking"])],
            {T: (("tracking",), ("tracking",))},
            id="dependant-failing-while-dependency-up-has-its-own-incident",
        ),
        pytest.param(
            FAST,
            [
                ("13:00", {P: "up", T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:05", {P: "down"}, ["opened platform", "announced platform"]),
                ("13:06", {L: "down"}, ["joined labels"]),
            ],
            {
                T: (("tracking",), ("tracking",)),
                P: (("platform", "labels"), ("platform", "labels")),
            },
            id="told-dependant-incident-is-not-merged",
        ),
        pytest.param(
            FAST,
            [
                (
                    "13:00",
                    {P: "down", R: "down"},
                    ["opened platform", "joined returns", "announced platform+returns"],
                )
            ],
            {P: (("platform", "returns"), ("platform", "returns"))},
            id="transitive-dependant-joins-the-root",
        ),
    ],
)
def test_dependencies(
    timing: Timing, rows: list[Row], still_open: dict[str, tuple[tuple[str, ...], ...]]
) -> None:
    """Dependants' failures gather under their dependency's incident, one first notice."""
    run = play(rows, make_rules(timing, depends_on=DEPENDS))
    assert run.log == expected(rows)
    assert {i.service_id: (i.covered, i.announced) for i in run.open.values()} == still_open


def test_merged_incident_closes_quietly_and_lends_its_first_failure() -> None:
    """The dependant's untold incident is resolved untold; the new one keeps its first failure."""
    rows: list[Row] = [
        ("13:00", {T: "down"}, ["opened tracking"]),
        ("13:01", {P: "down"}, ["merged tracking", "opened platform+tracking"]),
    ]
    run = play(rows, make_rules(DELAYED, depends_on=DEPENDS))
    (merged,) = run.closed.values()
    assert (merged.id, merged.customers_told_at, merged.sequence) == (
        "tracking-20261122T115940-000",
        None,
        0,
    )
    assert merged.resolved_at == at("13:01")
    (host,) = run.open.values()
    assert (host.id, host.first_failure_at) == ("platform-20261122T120040-000", at("12:59:40"))


# 4. Flapping -------------------------------------------------------------------------------

STARTS_FLAPPING: list[Row] = [
    ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
    ("13:10", {T: "~down"}, ["unstable tracking"]),
    ("13:15", {T: "~up"}, []),
    ("13:20", {T: "~down"}, []),
    ("13:30", {T: "~up"}, []),  # the 13:30 promise was replaced by the unstable notice's
    ("13:40", {T: "~down"}, ["update tracking"]),
    ("13:45", {T: "up"}, ["recovering tracking"]),
    ("13:54:59", {}, []),
    ("13:55", {}, ["resolved tracking"]),
]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            [
                ("13:00", {T: "~up"}, ["opened tracking", "announced tracking"]),
                ("13:10", {T: "~up"}, []),
            ],
            id="flapping-opens-an-incident-while-up",
        ),
        pytest.param(STARTS_FLAPPING, id="announced-incident-starts-flapping-one-notice"),
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:05", {T: "up"}, ["recovering tracking"]),
                ("13:10", {T: "~up"}, ["unstable tracking"]),
                ("13:15", {}, []),  # stable_for after 13:05 would have resolved it here
                ("13:25", {T: "~down"}, []),
                ("13:30", {T: "up"}, ["recovering tracking"]),
                ("13:40", {}, ["resolved tracking"]),
            ],
            id="flapping-while-recovering-stops-the-recovery",
        ),
        pytest.param(
            [
                ("13:00", {T: "~down"}, ["opened tracking", "announced tracking"]),
                ("13:20", {T: "~up"}, []),
                ("13:30", {}, ["update tracking"]),
                ("13:40", {T: "up"}, ["recovering tracking"]),  # answering since 13:20
                ("13:49:59", {}, []),
                ("13:50", {}, ["resolved tracking"]),
            ],
            id="stable-for-counts-from-the-end-of-flapping",
        ),
    ],
)
def test_flapping(rows: list[Row]) -> None:
    """A flapping service gets one unstable notice and no up/down stream until it settles."""
    assert play(rows, make_rules(FAST)).log == expected(rows)


def test_flapping_service_opens_an_unstable_incident() -> None:
    """A service that flaps without being down opens an incident marked unstable."""
    run = play([("13:00", {T: "~up"}, ["opened tracking", "announced tracking"])], make_rules(FAST))
    incident = run.incident()
    assert (incident.unstable, incident.status) == (True, IncidentStatus.INVESTIGATING)


def test_unstable_notice_counts_as_a_message_and_restarts_the_cadence() -> None:
    """The unstable notice takes the next sequence and promises an update update_every later."""
    run = play(STARTS_FLAPPING, make_rules(FAST))
    (unstable,) = [c.incident for c in run.changes if c.kind is ChangeKind.UNSTABLE]
    assert (unstable.sequence, unstable.next_update_at) == (2, at("13:40"))


CUSTOMER_FACING = {
    ChangeKind.ANNOUNCED,
    ChangeKind.UNSTABLE,
    ChangeKind.UPDATE,
    ChangeKind.RESOLVED,
}
STORM = Timing(customer_delay=0.0, update_every=HOUR, stable_for=10 * MINUTE)
STORM_DELAYED = Timing(customer_delay=2 * MINUTE, update_every=HOUR, stable_for=10 * MINUTE)


@pytest.mark.parametrize(
    ("rules", "rows"),
    [
        pytest.param(
            make_rules(STORM),
            [
                ("13:00", {T: "~down"}, ["opened tracking", "announced tracking"]),
                ("13:20", {T: "~up"}, []),
                ("13:40", {T: "~down"}, []),
                ("14:00", {T: "~up"}, ["update tracking"]),
                ("14:20", {T: "~down"}, []),
                ("14:40", {T: "~up"}, []),
                ("14:50", {T: "up"}, ["recovering tracking"]),
                ("15:00", {}, ["resolved tracking"]),
            ],
            id="storm-from-the-first-probe",
        ),
        pytest.param(
            make_rules(STORM_DELAYED),
            [
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:01", {T: "~down"}, ["unstable tracking"]),  # untold: no message
                ("13:02", {T: "~up"}, ["announced tracking"]),
                ("13:30", {T: "~down"}, []),
                ("14:02", {T: "~up"}, ["update tracking"]),
                ("14:30", {T: "~down"}, []),
                ("14:50", {T: "up"}, ["recovering tracking"]),
                ("15:00", {}, ["resolved tracking"]),
            ],
            id="storm-detected-within-customer-delay",
        ),
    ],
)
def test_two_hour_flap_storm_sends_at_most_three_messages(rules: Rules, rows: list[Row]) -> None:
    """A 1h50 flap storm with hourly updates reaches customers at most three times."""
    run = play(rows, rules)
    assert run.log == expected(rows)
    messages = [
        c
        for c in run.changes
        if c.kind in CUSTOMER_FACING and c.incident.customers_told_at is not None
    ]
    assert len(messages) <= 3
    assert run.incident().sequence == len(messages)


# 5. Canary gating --------------------------------------------------------------------------

BLOCKED_DOWN: list[Row] = [
    ("13:00", {T: "down"}, []),
    ("13:05", {}, []),
    ("13:30", {}, []),
]


@pytest.mark.parametrize(
    ("canary", "rows"),
    [
        pytest.param(
            at("12:59"), BLOCKED_DOWN, id="failure-after-last-canary-success-opens-nothing"
        ),
        pytest.param(
            {"13:00": at("12:59"), "13:01": at("13:01")},
            [
                ("13:00", {T: "down"}, []),
                ("13:01", {}, ["opened tracking", "announced tracking"]),
            ],
            id="opens-once-the-canary-answers-after-the-failure",
        ),
        pytest.param(
            at("12:59:40"),
            [("13:00", {T: "down"}, ["opened tracking", "announced tracking"])],
            id="canary-success-in-the-failures-first-second-opens",
        ),
        pytest.param(
            None,
            [("13:00", {T: "down"}, ["opened tracking", "announced tracking"])],
            id="no-canary-configured-no-gating",
        ),
        pytest.param(
            float("-inf"),
            [*BLOCKED_DOWN, ("13:40", {L: "~up"}, []), ("14:00", {}, [])],
            id="minus-infinity-blocks-everything",
        ),
        pytest.param(
            {"2026-11-20 09:00": at("2026-11-20 09:00"), "12:58": at("12:58")},
            [
                ("2026-11-20 09:00", {T: "up"}, []),
                ("12:58", {}, []),
                ("13:00", {T: "~up"}, []),  # flaps since 12:58 at most: it may be us
            ],
            id="flapping-after-last-canary-success-opens-nothing",
        ),
    ],
)
def test_canary_gating(canary: Canary, rows: list[Row]) -> None:
    """A failure opens an incident only once the canary has succeeded after it began."""
    assert play(rows, make_rules(FAST), canary).log == expected(rows)


# 6. Digest window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "rows"),
    [
        pytest.param(
            make_rules(FAST, digest_window=30.0),
            [
                ("13:00:00", {T: "down"}, ["opened tracking"]),
                ("13:00:10", {L: "down"}, ["opened labels"]),
                ("13:00:29", {}, []),
                ("13:00:30", {}, ["announced tracking", "announced labels"]),
                ("13:00:40", {R: "down"}, ["opened returns"]),
                ("13:01:09", {}, []),
                ("13:01:10", {}, ["announced returns"]),
            ],
            id="10s-apart-together-40s-later-separately",
        ),
        pytest.param(
            make_rules(DELAYED, digest_window=30.0),
            [
                # due at 13:01:40, 13:02:00 and 13:02:20; each waits 30 s more as a leader
                ("13:00:00", {T: "down"}, ["opened tracking"]),
                ("13:00:20", {L: "down"}, ["opened labels"]),
                ("13:00:40", {R: "down"}, ["opened returns"]),
                ("13:02:09", {}, []),
                ("13:02:10", {}, ["announced tracking", "announced labels"]),
                ("13:02:49", {}, []),
                ("13:02:50", {}, ["announced returns"]),
            ],
            id="a-follower-past-its-own-delay-joins-the-leaders-tick",
        ),
        pytest.param(
            make_rules(FAST, digest_window=30.0, tracking=Timing(300.0, 30 * MINUTE, 10 * MINUTE)),
            [
                ("13:00:00", {T: "down"}, ["opened tracking"]),
                ("13:01:00", {L: "down"}, ["opened labels"]),
                ("13:01:30", {}, ["announced labels"]),
                ("13:05:09", {}, []),
                ("13:05:10", {}, ["announced tracking"]),
            ],
            id="earlier-incident-not-yet-due-is-not-dragged-along",
        ),
        pytest.param(
            make_rules(DELAYED, digest_window=30.0),
            [
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:01", {L: "down@mw-7"}, ["opened labels", "announced labels"]),
                ("13:02:09", {}, []),
                ("13:02:10", {}, ["announced tracking"]),
            ],
            id="maintenance-overrun-does-not-drag-an-earlier-incident-along",
        ),
    ],
)
def test_digest_window(rules: Rules, rows: list[Row]) -> None:
    """After a due incident's window, its customers' other due incidents go in the same tick."""
    assert play(rows, rules).log == expected(rows)


@pytest.mark.parametrize(
    ("delay", "rows"),
    [
        pytest.param(
            10.0,
            [("13:00", {T: "down"}, ["opened tracking", "announced tracking"])],
            id="delay-shorter-than-confirmation-is-told-once-confirmed",
        ),
        pytest.param(
            0.0,
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:00:10", {L: "down"}, ["opened labels", "announced labels"]),
            ],
            id="zero-delay-no-digest-each-at-once",
        ),
        pytest.param(
            60.0,
            [
                ("13:00", {T: "down"}, ["opened tracking"]),
                ("13:00:39", {}, []),
                ("13:00:40", {}, ["announced tracking"]),
            ],
            id="the-default-minute-counts-from-the-first-failure",
        ),
    ],
)
def test_customer_delay_is_honoured_exactly_without_a_digest(delay: float, rows: list[Row]) -> None:
    """With no digest_window written, nothing delays a first notice beyond customer_delay."""
    timing = Timing(customer_delay=delay, update_every=30 * MINUTE, stable_for=10 * MINUTE)
    assert play(rows, make_rules(timing)).log == expected(rows)


def test_a_long_delay_service_is_not_told_early_with_another_services_digest() -> None:
    """Shop (delay 0) and EDI (delay 10 min) failing 25 s apart: EDI waits its own delay."""
    rules = make_rules(
        FAST,
        digest_window=30.0,
        returns=Timing(customer_delay=10 * MINUTE, update_every=HOUR, stable_for=5 * MINUTE),
    )
    rows: list[Row] = [
        ("13:00:00", {T: "down"}, ["opened tracking"]),
        ("13:00:25", {R: "down"}, ["opened returns"]),
        ("13:00:30", {}, ["announced tracking"]),
        ("13:00:31", {R: "up"}, ["resolved returns"]),  # a blip on EDI: never told
    ]
    assert play(rows, rules).log == expected(rows)


def test_digest_merges_only_incidents_that_share_a_customer() -> None:
    """Two services with no customer in common are announced on their own schedules."""
    rules = make_rules(FAST, digest_window=30.0, audience={T: {"acme"}, L: {"globex"}})
    rows: list[Row] = [
        ("13:00:00", {T: "down"}, ["opened tracking"]),
        ("13:00:10", {L: "down"}, ["opened labels"]),
        ("13:00:30", {}, ["announced tracking"]),
        ("13:00:39", {}, []),
        ("13:00:40", {}, ["announced labels"]),
    ]
    assert play(rows, rules).log == expected(rows)


# 7. Maintenance overrun ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            [
                ("13:00", {L: "down@mw-42"}, ["opened labels", "announced labels"]),
                ("13:30", {}, ["update labels"]),
            ],
            id="overrun-announced-at-once-despite-delay-and-window",
        ),
        pytest.param(
            [
                ("13:00", {L: "down@mw-42"}, ["opened labels", "announced labels"]),
                ("13:10", {L: "up"}, ["recovering labels"]),
                ("13:20", {}, ["resolved labels"]),
            ],
            id="overrun-recovers-and-resolves-with-customers-told",
        ),
    ],
)
def test_maintenance_overrun(rows: list[Row]) -> None:
    """A service still down when its window ends is announced at once, ignoring the delays."""
    run = play(rows, make_rules(DELAYED, digest_window=30.0))
    assert run.log == expected(rows)
    incident = run.incident()
    assert (incident.maintenance_id, incident.customers_told_at) == ("mw-42", at("13:00"))


# Flapping without a failure: when did it begin? ------------------------------------------------

UP_FOR_DAYS: list[Row] = [
    ("2026-11-20 09:00", {T: "up"}, []),
    ("12:55", {}, []),
    ("13:00", {T: "~up"}, ["opened tracking", "announced tracking"]),
]


def test_flapping_incident_is_dated_from_its_flapping() -> None:
    """A service healthy at 12:55 that flaps at 13:00 has an incident that began after 12:55."""
    run = play(UP_FOR_DAYS, make_rules(FAST))
    assert run.log == expected(UP_FOR_DAYS)
    incident = run.incident()
    assert incident.first_failure_at > at("12:55"), incident.id


def test_separate_flapping_spells_are_separate_incidents() -> None:
    """Two flapping spells, the first resolved quietly, get two different incident ids."""
    rows: list[Row] = [
        ("12:00", {T: "up"}, []),
        ("13:00", {T: "~up"}, ["opened tracking"]),
        ("13:01", {T: "up"}, ["resolved tracking"]),
        ("13:10", {T: "~up"}, ["opened tracking"]),
    ]
    run = play(rows, make_rules(DELAYED))
    assert run.log == expected(rows)
    opened = [c.incident.id for c in run.changes if c.kind is ChangeKind.OPENED]
    assert len(set(opened)) == 2, opened


# 9. Never seen up ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            [
                ("13:00", {T: "!down"}, ["opened tracking"]),  # ops hear "never seen up"
                ("13:30", {}, []),  # customers hear nothing, however long
                ("15:00", {}, []),
                ("15:10", {T: "up"}, ["resolved tracking"]),  # fixed: closed quietly
            ],
            id="a-check-never-seen-up-tells-customers-nothing",
        ),
        pytest.param(
            [
                ("13:00", {T: "!down"}, ["opened tracking"]),
                ("13:10", {T: "up"}, ["resolved tracking"]),
                ("13:20", {T: "down"}, ["opened tracking", "announced tracking"]),
            ],
            id="once-up-its-next-outage-is-told",
        ),
        pytest.param(
            [
                ("13:00", {P: "!down"}, ["opened platform"]),
                ("13:05", {T: "down"}, ["joined tracking", "announced platform+tracking"]),
            ],
            id="a-dependant-that-was-up-joining-makes-it-told",
        ),
    ],
)
def test_never_seen_up(rows: list[Row]) -> None:
    """A check that never answered tells ops only, until it answers or one that did joins."""
    rules = make_rules(FAST, depends_on={T: {P}})
    assert play(rows, rules).log == expected(rows)


# 10. An update right before the resolution -------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:20:30", {T: "up"}, ["recovering tracking"]),  # resolves at 13:30:30
                ("13:30", {}, []),  # the 13:30 update would come 30 s before it: left to it
                ("13:30:30", {}, ["resolved tracking"]),
            ],
            id="update-due-within-a-minute-of-the-resolution-is-left-to-it",
        ),
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:22", {T: "up"}, ["recovering tracking"]),  # resolves at 13:32
                ("13:30", {}, ["update tracking"]),  # two minutes before: still sent
                ("13:32", {}, ["resolved tracking"]),
            ],
            id="update-two-minutes-before-the-resolution-is-sent",
        ),
        pytest.param(
            [
                ("13:00", {T: "down"}, ["opened tracking", "announced tracking"]),
                ("13:20:30", {T: "up"}, ["recovering tracking"]),
                ("13:30", {}, []),
                ("13:30:10", {T: "down"}, ["relapsed tracking", "update tracking"]),
            ],
            id="a-relapse-sends-the-held-update-at-once",
        ),
    ],
)
def test_an_update_is_never_sent_just_before_the_resolution(rows: list[Row]) -> None:
    """An update due under a minute before the resolution is merged into it, not sent apart."""
    assert play(rows, make_rules(FAST)).log == expected(rows)
