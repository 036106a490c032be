"""Maintenance windows as tables of steps with explicit ``now``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import ServiceView
from monitor.domain.maintenance import (
    MaintenanceKind,
    Window,
    WindowProgress,
    active,
    advance,
    mask,
)

# Europe/Paris is at UTC+1 (CET) all of November: a fixed offset keeps tests off tzdata.
PARIS = timezone(timedelta(hours=1))
HOUR = 3600.0
UP, DOWN, MAINTENANCE = CheckStatus.UP, CheckStatus.DOWN, CheckStatus.MAINTENANCE


def paris(day: int, hour: int, minute: int = 0) -> float:
    """UNIX seconds for a Paris wall-clock time in November 2026."""
    return datetime(2026, 11, day, hour, minute, tzinfo=PARIS).timestamp()


RELEASE = Window(
    id="national-post-release-20261122",
    services=("national-post",),
    start=paris(22, 13),
    end=paris(22, 15),
    announce_before=24 * HOUR,
    summary={"fr": "Mise en production La Poste", "en": "National post release"},
)
EXTENDED = replace(RELEASE, end=paris(22, 16))
SHORTENED = replace(RELEASE, end=paris(22, 14, 30))
CANCELLED = replace(RELEASE, cancelled=True)
UNANNOUNCED = replace(RELEASE, announce_before=0.0)

Step = tuple[float, Window, list[str]]


def play(steps: list[Step]) -> list[list[str]]:
    """Feed (now, window as configured then) steps, keeping progress; return kinds per step."""
    progress: dict[str, WindowProgress] = {}
    out = []
    for now, window, _ in steps:
        changes = advance([window], progress, now)
        for change in changes:
            progress[change.window.id] = change.progress
        out.append([change.kind.value for change in changes])
    return out


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(
            [
                (paris(21, 12), RELEASE, []),
                (paris(21, 13), RELEASE, ["planned"]),
                (paris(21, 13, 1), RELEASE, []),
                (paris(21, 20), RELEASE, []),
                (paris(22, 12, 59), RELEASE, []),
                (paris(22, 13), RELEASE, ["started"]),
                (paris(22, 14), RELEASE, []),
                (paris(22, 15), RELEASE, ["ended"]),
                (paris(22, 15, 1), RELEASE, []),
                (paris(23, 13), RELEASE, []),
            ],
            id="announced-once-a-day-ahead-then-started-and-ended",
        ),
        pytest.param(
            [(paris(22, 9), RELEASE, ["planned"]), (paris(22, 13), RELEASE, ["started"])],
            id="first-seen-inside-notice-period-is-announced-late",
        ),
        pytest.param(
            [
                (paris(21, 13), UNANNOUNCED, []),
                (paris(22, 13), UNANNOUNCED, ["started"]),
                (paris(22, 15), UNANNOUNCED, ["ended"]),
            ],
            id="no-advance-notice-starts-without-planned",
        ),
        pytest.param(
            [(paris(22, 13, 30), RELEASE, ["started"]), (paris(22, 15), RELEASE, ["ended"])],
            id="added-after-start-gets-started-only",
        ),
        pytest.param(
            [
                (paris(21, 13), RELEASE, ["planned"]),
                (paris(22, 13), RELEASE, ["started"]),
                (paris(22, 14, 30), EXTENDED, ["extended"]),
                (paris(22, 14, 31), EXTENDED, []),
                (paris(22, 15), EXTENDED, []),
                (paris(22, 16), EXTENDED, ["ended"]),
            ],
            id="extension-sends-one-notice-and-ends-at-new-end",
        ),
        pytest.param(
            [
                (paris(21, 13), RELEASE, ["planned"]),
                (paris(22, 10), EXTENDED, ["extended"]),
                (paris(22, 13), EXTENDED, ["started"]),
                (paris(22, 15), EXTENDED, []),
                (paris(22, 16), EXTENDED, ["ended"]),
            ],
            id="extension-before-start-is-announced-once",
        ),
        pytest.param(
            [
                (paris(22, 13), RELEASE, ["started"]),
                (paris(22, 14), SHORTENED, []),
                (paris(22, 14, 30), SHORTENED, ["ended"]),
                (paris(22, 15), SHORTENED, []),
            ],
            id="shortening-sends-nothing-but-ends-early",
        ),
        pytest.param(
            [
                (paris(22, 13), RELEASE, ["started"]),
                (paris(22, 14), SHORTENED, []),
                (paris(22, 14, 20), replace(RELEASE, end=paris(22, 14, 45)), []),
                (paris(22, 14, 40), EXTENDED, ["extended"]),
                (paris(22, 16), EXTENDED, ["ended"]),
            ],
            id="moving-end-back-within-the-told-end-is-quiet",
        ),
        pytest.param(
            [
                (paris(22, 13), RELEASE, ["started"]),
                (paris(22, 16, 30), EXTENDED, ["ended"]),
            ],
            id="extension-whose-end-passed-while-down-only-ends",
        ),
        pytest.param(
            [(paris(22, 13), RELEASE, ["started"]), (paris(22, 18), RELEASE, ["ended"])],
            id="end-passed-while-down-ends-late",
        ),
        pytest.param(
            [
                (paris(21, 13), RELEASE, ["planned"]),
                (paris(22, 9), CANCELLED, ["cancelled"]),
                (paris(22, 10), CANCELLED, []),
                (paris(22, 13), CANCELLED, []),
                (paris(22, 15), CANCELLED, []),
            ],
            id="cancel-after-announce-is-told-once-then-silence",
        ),
        pytest.param(
            [
                (paris(22, 13), RELEASE, ["started"]),
                (paris(22, 14), CANCELLED, ["cancelled"]),
                (paris(22, 15), CANCELLED, []),
            ],
            id="cancel-after-start-is-told-and-never-ends",
        ),
        pytest.param(
            [
                (paris(20, 12), RELEASE, []),
                (paris(21, 9), CANCELLED, []),
                (paris(21, 13), CANCELLED, []),
                (paris(22, 13), CANCELLED, []),
                (paris(22, 15), CANCELLED, []),
            ],
            id="cancel-before-announce-is-never-told",
        ),
        pytest.param(
            [
                (paris(21, 13), RELEASE, ["planned"]),
                (paris(22, 9), CANCELLED, ["cancelled"]),
                (paris(22, 13), RELEASE, []),
                (paris(22, 15), RELEASE, []),
            ],
            id="uncancelling-a-told-cancellation-stays-cancelled",
        ),
        pytest.param(
            [(paris(22, 15), RELEASE, []), (paris(22, 16), RELEASE, [])],
            id="window-missed-entirely-is-silent",
        ),
        pytest.param(
            [
                (paris(21, 13), RELEASE, ["planned"]),
                (paris(22, 15, 30), RELEASE, []),
                (paris(23, 0), RELEASE, []),
            ],
            id="announced-but-missed-start-is-silent",
        ),
    ],
)
def test_window_timeline(steps: list[Step]) -> None:
    """Each row plays one window over time and checks the notices due at each step."""
    assert play(steps) == [kinds for _, _, kinds in steps]


def test_progress_records_what_customers_were_told() -> None:
    """Each change carries the progress after it, stamped with ``now``."""
    progress: dict[str, WindowProgress] = {}
    seen = []
    for now, window in [
        (paris(21, 13), RELEASE),
        (paris(22, 13, 1), RELEASE),
        (paris(22, 14), EXTENDED),
        (paris(22, 16, 2), EXTENDED),
    ]:
        for change in advance([window], progress, now):
            progress[window.id] = change.progress
            seen.append((change.kind, change.at, change.progress.told_end))
    assert seen == [
        (MaintenanceKind.PLANNED, paris(21, 13), paris(22, 15)),
        (MaintenanceKind.STARTED, paris(22, 13, 1), paris(22, 15)),
        (MaintenanceKind.EXTENDED, paris(22, 14), paris(22, 16)),
        (MaintenanceKind.ENDED, paris(22, 16, 2), paris(22, 16)),
    ]
    assert progress[RELEASE.id] == WindowProgress(
        RELEASE.id,
        announced_at=paris(21, 13),
        started_at=paris(22, 13, 1),
        told_end=paris(22, 16),
        ended_at=paris(22, 16, 2),
    )


def test_cancellation_progress_is_stamped() -> None:
    """A cancellation records when customers were told, keeping what they heard before."""
    told = WindowProgress(RELEASE.id, announced_at=paris(21, 13), told_end=paris(22, 15))
    [change] = advance([CANCELLED], {RELEASE.id: told}, paris(22, 9))
    assert change.kind is MaintenanceKind.CANCELLED
    assert change.progress == replace(told, cancelled_at=paris(22, 9))


def test_changes_are_ordered_by_window_start_then_id() -> None:
    """Notices for several windows come out by start, ties broken by id, in any input order."""
    morning = Window("a-labels-morning", ("labels",), paris(21, 10), paris(21, 13))
    lunch_b = Window("b-lunch", ("tracking",), paris(21, 13), paris(21, 14))
    lunch_a = Window("a-lunch", ("tracking",), paris(21, 13), paris(21, 14))
    progress = {morning.id: WindowProgress(morning.id, started_at=paris(21, 10))}
    changes = advance([RELEASE, lunch_b, lunch_a, morning], progress, paris(21, 13))
    assert [(c.window.id, c.kind) for c in changes] == [
        (morning.id, MaintenanceKind.ENDED),
        (lunch_a.id, MaintenanceKind.STARTED),
        (lunch_b.id, MaintenanceKind.STARTED),
        (RELEASE.id, MaintenanceKind.PLANNED),
    ]


EVENING = Window("carriers-evening", ("national-post", "labels"), paris(22, 14), paris(22, 17))
LABELS_OFF = Window("labels-off", ("labels",), paris(22, 12), paris(22, 18), cancelled=True)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(paris(22, 12, 59), {}, id="before-any-window"),
        pytest.param(paris(22, 13), {"national-post": RELEASE.id}, id="start-is-inside"),
        pytest.param(
            paris(22, 14),
            {"national-post": EVENING.id, "labels": EVENING.id},
            id="overlap-picks-the-window-ending-last",
        ),
        pytest.param(
            paris(22, 15),
            {"national-post": EVENING.id, "labels": EVENING.id},
            id="end-is-outside",
        ),
        pytest.param(paris(22, 17), {}, id="cancelled-window-is-never-active"),
    ],
)
def test_active(now: float, expected: dict[str, str]) -> None:
    """Each row checks which window is in effect for each service at ``now``."""
    windows = [RELEASE, EVENING, LABELS_OFF]
    assert {sid: w.id for sid, w in active(windows, now).items()} == expected


def test_active_tie_on_end_does_not_depend_on_order() -> None:
    """Two windows ending together resolve to the same one in any configuration order."""
    twin = replace(RELEASE, id="national-post-twin")
    assert active([RELEASE, twin], paris(22, 14)) == active([twin, RELEASE], paris(22, 14))


FAILING = ServiceView(
    "national-post",
    DOWN,
    since=paris(22, 14, 10),
    first_failure_at=paris(22, 14, 9),
    reason="timeout",
    check_id="national-post-ws",
    flapping=True,
)
RECOVERED = ServiceView("national-post", UP, since=paris(22, 14, 50), first_failure_at=None)
FAILED_AFTER = replace(FAILING, since=paris(22, 15, 10), first_failure_at=paris(22, 15, 9))
NEXT_WEEK = replace(RELEASE, id="national-post-20261129", start=paris(29, 13), end=paris(29, 15))
LAST_WEEK = replace(RELEASE, id="national-post-20261115", start=paris(15, 13), end=paris(15, 15))
IN_MAINTENANCE = replace(FAILING, status=MAINTENANCE, flapping=False, maintenance_id=RELEASE.id)
OVERRUN = replace(FAILING, maintenance_id=RELEASE.id, first_failure_at=paris(22, 15))


@pytest.mark.parametrize(
    ("view", "windows", "now", "expected"),
    [
        pytest.param(FAILING, [RELEASE], paris(22, 14, 30), IN_MAINTENANCE, id="down-inside"),
        pytest.param(
            RECOVERED,
            [RELEASE],
            paris(22, 14, 55),
            replace(RECOVERED, status=MAINTENANCE, maintenance_id=RELEASE.id),
            id="up-inside-is-maintenance-too",
        ),
        pytest.param(FAILING, [RELEASE], paris(22, 15, 2), OVERRUN, id="down-at-end-overruns"),
        pytest.param(
            FAILING,
            [LAST_WEEK, RELEASE, NEXT_WEEK],
            paris(22, 15, 2),
            OVERRUN,
            id="overrun-of-latest-ended-window-despite-a-future-one",
        ),
        pytest.param(RECOVERED, [RELEASE], paris(22, 15, 2), RECOVERED, id="recovered-before-end"),
        pytest.param(
            FAILED_AFTER, [RELEASE], paris(22, 15, 20), FAILED_AFTER, id="failed-after-end"
        ),
        pytest.param(
            FAILING, [CANCELLED], paris(22, 14, 30), FAILING, id="cancelled-window-masks-nothing"
        ),
        pytest.param(
            FAILING, [CANCELLED], paris(22, 15, 2), FAILING, id="cancelled-window-never-overruns"
        ),
        pytest.param(
            replace(FAILING, service_id="labels"),
            [RELEASE],
            paris(22, 14, 30),
            replace(FAILING, service_id="labels"),
            id="other-service-untouched",
        ),
    ],
)
def test_mask(view: ServiceView, windows: list[Window], now: float, expected: ServiceView) -> None:
    """Each row checks how one service's view is presented to the incident logic at ``now``."""
    assert mask({view.service_id: view}, windows, now) == {view.service_id: expected}
