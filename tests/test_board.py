"""The public snapshot, built from plain inputs at a given ``now``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config.load import Config
from monitor.core.words import Words
from monitor.domain.availability import Tally
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    ServiceView,
)
from monitor.domain.maintenance import Window, WindowProgress
from monitor.status.board import Inputs, PublicState, Snapshot, build, public
from monitor.status.source import CACHE_S, StatusBoard
from monitor.store.sqlite import SqliteStore
from tests.builders import make_incident
from tests.conftest import ConfigFactory

# 2026-11-21 12:00 in Paris (UTC+1).
NOW = datetime(2026, 11, 21, 11, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


def view(
    service_id: str, status: CheckStatus, since: float = NOW - 600, **extra: object
) -> ServiceView:
    """A service view as the engine keeps it."""
    return ServiceView(service_id=service_id, status=status, since=since, **extra)  # type: ignore[arg-type]


def incident(
    id_: str, *, opened: float, resolved: float | None = None, told: bool = True, **extra: object
) -> Incident:
    """An incident of the tracking service, resolved at ``resolved`` if given."""
    return make_incident(
        id_,
        opened,
        status=IncidentStatus.RESOLVED if resolved is not None else IncidentStatus.INVESTIGATING,
        first_failure_at=opened - 60,
        resolved_at=resolved,
        recovered_at=resolved,
        customers_told_at=opened + 1 if told else None,
        reason="http_status",
        detail="GET http://10.0.0.7/secret?token=abc: 500",
        check_id="tracking-ws",
        **extra,
    )


def snapshot(
    config: Config,
    *,
    views: dict[str, ServiceView] | None = None,
    incidents: Sequence[Incident] = (),
    windows: Sequence[Window] = (),
    progress: dict[str, WindowProgress] | None = None,
    days: Sequence[Tally] = (),
    timelines: dict[str, Sequence[IncidentUpdate]] | None = None,
    now: float = NOW,
) -> Snapshot:
    """Build a snapshot from the given parts."""
    inputs = Inputs(
        config=config,
        views=views if views is not None else {},
        open=[i for i in incidents if i.resolved_at is None],
        past=[i for i in incidents if i.resolved_at is not None],
        timelines=timelines or {},
        windows=windows,
        progress=progress or {},
        days=days,
        measured_at=None,
    )
    return build(inputs, now)


@pytest.fixture
def config(make_config: ConfigFactory) -> Config:
    """Two services: tracking (check tracking-ws) and labels (check labels-ws)."""
    return make_config()


@pytest.mark.parametrize(
    ("status", "flapping", "expected"),
    [
        (CheckStatus.UP, False, PublicState.OPERATIONAL),
        (CheckStatus.DEGRADED, False, PublicState.DEGRADED),
        (CheckStatus.UP, True, PublicState.DEGRADED),
        (CheckStatus.DOWN, False, PublicState.OUTAGE),
        (CheckStatus.UNKNOWN, False, PublicState.UNKNOWN),
        (CheckStatus.MAINTENANCE, False, PublicState.MAINTENANCE),
    ],
)
def test_service_state_follows_its_view(
    config: Config, status: CheckStatus, flapping: bool, expected: PublicState
) -> None:
    """Each engine status reads as one public state; a flapping service reads as degraded."""
    board = snapshot(config, views={"tracking": view("tracking", status, flapping=flapping)})
    tracking = board.service("tracking")
    assert tracking is not None and tracking.state is expected
    assert tracking.since == NOW - 600


def test_active_window_shows_maintenance_from_its_start(config: Config) -> None:
    """A service inside a maintenance window reads as maintenance, even while its probes fail."""
    window = Window("rollback", ("tracking",), start=NOW - 300, end=NOW + 3600)
    board = snapshot(
        config, views={"tracking": view("tracking", CheckStatus.DOWN)}, windows=[window]
    )
    tracking = board.service("tracking")
    assert tracking is not None
    assert (tracking.state, tracking.since) == (PublicState.MAINTENANCE, NOW - 300)
    assert [w.id for w in board.maintenance] == ["rollback"]
    assert board.maintenance[0].running


@pytest.mark.parametrize(
    ("manual", "resolved", "expected", "since"),
    [
        pytest.param(True, None, PublicState.OUTAGE, NOW - 1860, id="opened-by-hand"),
        pytest.param(False, None, PublicState.OPERATIONAL, NOW - 600, id="detected-recovering"),
        pytest.param(True, NOW - 60, PublicState.OPERATIONAL, NOW - 600, id="resolved-by-hand"),
    ],
)
def test_an_incident_opened_by_hand_shows_an_outage_whatever_the_checks_say(
    config: Config, manual: bool, resolved: float | None, expected: PublicState, since: float
) -> None:
    """Green checks never saw an outage an operator reported: the page says what customers read."""
    opened = incident("tracking-1", opened=NOW - 1800, resolved=resolved, manual=manual)
    views = {"tracking": view("tracking", CheckStatus.UP)}
    tracking = snapshot(config, views=views, incidents=[opened]).service("tracking")
    assert tracking is not None and (tracking.state, tracking.since) == (expected, since)


def test_service_without_a_view_is_unknown(config: Config) -> None:
    """Before the first result, a service is awaiting data, not operational."""
    board = snapshot(config)
    assert {s.id: s.state for s in board.services} == {
        "tracking": PublicState.UNKNOWN,
        "labels": PublicState.UNKNOWN,
    }


def test_ninety_cells_oldest_first_with_todays_figure(config: Config) -> None:
    """The bar has 90 local days ending today; a day's figure is its worst check's ratio."""
    days = [
        Tally("tracking-ws", "2026-11-21", total=100, ok=99),
        Tally("labels-ws", "2026-11-21", total=10, ok=5),
        Tally("tracking-ws", "2026-11-20", total=10, ok=10),
    ]
    board = snapshot(config, days=days)
    tracking = board.service("tracking")
    assert tracking is not None
    assert len(tracking.days) == 90
    assert tracking.days[-1].day.isoformat() == "2026-11-21"
    assert tracking.days[0].day.isoformat() == "2026-08-24"
    assert tracking.days[-1].availability == pytest.approx(0.99)
    assert tracking.days[-2].availability == 1.0
    assert tracking.days[-3].availability is None  # no result that day
    assert tracking.uptime == pytest.approx(109 / 110)


@pytest.mark.parametrize(
    ("first_day_back", "measured", "measured_30"),
    [
        (0, 1, 1),  # a fresh install: measured over today only, not "over 90 days"
        (1, 2, 2),
        (40, 2, 1),  # stopped for 39 days: those are no data, not perfect days
        (89, 2, 1),
        (None, 0, 0),  # no result at all: no figure
    ],
)
def test_the_uptime_says_over_which_days_it_was_measured(
    config: Config, first_day_back: int | None, measured: int, measured_30: int
) -> None:
    """Days without results are no data and not counted: the figure names the days it is over."""
    today = date(2026, 11, 21)
    days = []
    if first_day_back is not None:
        days = [
            Tally("tracking-ws", (today - timedelta(days=back)).isoformat(), total=10, ok=10)
            for back in (first_day_back, 0)
        ]
    tracking = snapshot(config, days=days).service("tracking")
    assert tracking is not None
    assert (tracking.measured_days, tracking.measured_days_30) == (measured, measured_30)


def test_a_phone_figure_covers_the_30_days_a_phone_shows(config: Config) -> None:
    """The narrow bar shows 30 days: its figure leaves out older failures."""
    days = [
        Tally("tracking-ws", "2026-09-01", total=10, ok=5),  # 81 days back: wide bar only
        Tally("tracking-ws", "2026-11-21", total=10, ok=10),
    ]
    tracking = snapshot(config, days=days).service("tracking")
    assert tracking is not None
    assert (tracking.uptime, tracking.uptime_30) == (0.75, 1.0)


def test_excused_failures_do_not_count(config: Config) -> None:
    """Failures inside a maintenance window leave a day's availability whole."""
    days = [Tally("tracking-ws", "2026-11-21", total=100, ok=90, excused=10)]
    tracking = snapshot(config, days=days).service("tracking")
    assert tracking is not None and tracking.days[-1].availability == 1.0


def test_incident_marks_every_day_it_touched(config: Config) -> None:
    """An outage from the evening before to this morning marks both days' cells."""
    overnight = incident("tracking-1", opened=NOW - 16 * 3600, resolved=NOW - 3 * 3600)
    board = snapshot(config, incidents=[overnight])
    tracking, labels = board.service("tracking"), board.service("labels")
    assert tracking is not None and labels is not None
    assert [c.incidents for c in tracking.days[-3:]] == [(), ("tracking-1",), ("tracking-1",)]
    assert all(not c.incidents for c in labels.days)


def test_resolved_incidents_need_to_have_been_told(config: Config) -> None:
    """A blip resolved before anyone was told stays off the page; a told one stays 14 days."""
    blip = incident("blip", opened=NOW - 7200, resolved=NOW - 7000, told=False)
    told = incident("told", opened=NOW - 5 * DAY, resolved=NOW - 5 * DAY + 900)
    old = incident("old", opened=NOW - 20 * DAY, resolved=NOW - 20 * DAY + 900)
    running = incident("running", opened=NOW - 300, told=False)
    board = snapshot(config, incidents=[blip, told, old, running])
    assert [i.id for i in board.open] == ["running"]
    assert [i.id for i in board.resolved] == ["told"]
    assert not public(blip) and public(running)
    tracking = board.service("tracking")
    assert tracking is not None
    # Older than 14 days: off the list, still on its day in the bar.
    assert any("old" in c.incidents for c in tracking.days)


def test_snapshot_keeps_no_internal_field(config: Config) -> None:
    """Reasons, details and check ids never reach the snapshot."""
    board = snapshot(config, incidents=[incident("tracking-1", opened=NOW - 300)])
    text = repr(board)
    for secret in ("10.0.0.7", "token=abc", "http_status", "tracking-ws"):
        assert secret not in text


def test_changed_at_is_the_latest_event(config: Config) -> None:
    """Last change: the newest of state changes, timeline entries and maintenance steps."""
    entry = IncidentUpdate(
        "tracking-1", NOW - 30, "identified", ChangeKind.IDENTIFIED, Words(every="Cause found")
    )
    window = Window("w", ("labels",), start=NOW + 3600, end=NOW + 7200)
    told = {"w": WindowProgress("w", announced_at=NOW - 20)}
    base = {"tracking": view("tracking", CheckStatus.DOWN, since=NOW - 400)}
    open_one = incident("tracking-1", opened=NOW - 400)
    board = snapshot(config, views=base, incidents=[open_one], timelines={"tracking-1": [entry]})
    assert board.changed_at == NOW - 30
    later = snapshot(
        config, views=base, incidents=[open_one], windows=[window], progress=told,
        timelines={"tracking-1": [entry]},
    )  # fmt: skip
    assert later.changed_at == NOW - 20
    assert later.open[0].updates == (entry,)


@pytest.mark.parametrize(
    ("start", "end", "cancelled", "told", "listed"),
    [
        (NOW - 7200, NOW - 3600, False, {"started_at": NOW - 7200, "ended_at": NOW - 3600}, "past"),
        (NOW - 7200, NOW - 3600, False, {}, None),  # customers never heard of it
        (NOW + 3600, NOW + 7200, False, {"announced_at": NOW - DAY}, "upcoming"),
        # Called off before it began: upcoming (marked cancelled) until its start, never past.
        (
            NOW + 3600,
            NOW + 7200,
            True,
            {"announced_at": NOW - DAY, "cancelled_at": NOW - 60},
            "upcoming",
        ),
        (NOW + 3600, NOW + 7200, True, {"cancelled_at": NOW - 60}, None),  # unannounced
        (
            NOW - 3600,
            NOW + 3600,
            True,
            {"announced_at": NOW - DAY, "cancelled_at": NOW - 7200},
            None,
        ),
        # Cancelled while running: it did happen, for a while.
        (
            NOW - 7200,
            NOW + 3600,
            True,
            {"started_at": NOW - 7200, "cancelled_at": NOW - 60},
            "past",
        ),
        (NOW - 20 * DAY, NOW - 19 * DAY, False, {"started_at": NOW - 20 * DAY}, None),  # too old
    ],
)
def test_maintenance_is_listed_where_it_belongs(
    config: Config,
    start: float,
    end: float,
    cancelled: bool,
    told: dict[str, float],
    listed: str | None,
) -> None:
    """Upcoming while it may still come; past only if it ran and customers heard of it."""
    window = Window("w", ("labels",), start=start, end=end, cancelled=cancelled)
    board = snapshot(config, windows=[window], progress={"w": WindowProgress("w", **told)})
    upcoming = [w.id for w in board.maintenance]
    past = [w.id for w in board.past_maintenance]
    assert (upcoming, past) == {
        "upcoming": (["w"], []),
        "past": ([], ["w"]),
        None: ([], []),
    }[listed]
    if upcoming:
        assert board.maintenance[0].cancelled is cancelled


def test_each_document_is_rendered_once_per_snapshot(config: Config, tmp_path: Path) -> None:
    """Repeated requests reuse the rendered bytes until the snapshot is rebuilt."""
    store = SqliteStore.open(tmp_path / "db")
    clock = [NOW]
    board = StatusBoard(
        config=lambda: config,
        views=dict,
        open_incidents=list,
        windows=lambda: ([], {}),
        store=store,
        clock=lambda: clock[0],
    )
    made: list[str] = []

    def make() -> bytes:
        made.append("page")
        return b"<html>"

    first = board.snapshot()
    assert board.rendered(first, "/", make) == board.rendered(first, "/", make) == b"<html>"
    assert len(made) == 1
    clock[0] += CACHE_S
    second = board.snapshot()
    assert second is not first
    board.rendered(second, "/", make)
    assert len(made) == 2
    store.close()
