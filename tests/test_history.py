"""monitor.domain.availability as tables: local days across midnight and DST, and ratios."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.domain.availability import (
    DAYS_SHOWN,
    Tally,
    by_bucket,
    day_bounds,
    day_of,
    last_days,
    minute_of,
    ratio,
    service_ratio,
)

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
ZULU = ZoneInfo("UTC")


def utc(text: str) -> float:
    """The Unix time of an ISO UTC timestamp such as ``2026-11-21T23:00:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("at", "zone", "day"),
    [
        # Winter: Paris is UTC+1, so its midnight is 23:00 UTC the day before.
        ("2026-11-21T22:59:59", PARIS, date(2026, 11, 21)),
        ("2026-11-21T23:00:00", PARIS, date(2026, 11, 22)),
        ("2026-11-21T23:00:00", ZULU, date(2026, 11, 21)),
        # Summer: UTC+2.
        ("2026-07-01T21:59:59", PARIS, date(2026, 7, 1)),
        ("2026-07-01T22:00:00", PARIS, date(2026, 7, 2)),
        # 29 March 2026 starts in CET (+1) and ends in CEST (+2).
        ("2026-03-28T22:59:59", PARIS, date(2026, 3, 28)),
        ("2026-03-28T23:00:00", PARIS, date(2026, 3, 29)),
        ("2026-03-29T01:30:00", PARIS, date(2026, 3, 29)),  # just after the clocks jump
        ("2026-03-29T21:59:59", PARIS, date(2026, 3, 29)),
        ("2026-03-29T22:00:00", PARIS, date(2026, 3, 30)),
        # 25 October 2026 starts in CEST and ends in CET.
        ("2026-10-24T21:59:59", PARIS, date(2026, 10, 24)),
        ("2026-10-24T22:00:00", PARIS, date(2026, 10, 25)),
        ("2026-10-25T22:59:59", PARIS, date(2026, 10, 25)),
        ("2026-10-25T23:00:00", PARIS, date(2026, 10, 26)),
    ],
)
def test_day_of_is_the_local_calendar_day(at: str, zone: ZoneInfo, day: date) -> None:
    """A Unix time falls on the calendar day a clock in that zone shows."""
    assert day_of(utc(at), zone) == day


@pytest.mark.parametrize(
    ("day", "zone", "start", "hours"),
    [
        (date(2026, 11, 21), PARIS, "2026-11-20T23:00:00", 24),
        (date(2026, 3, 29), PARIS, "2026-03-28T23:00:00", 23),
        (date(2026, 10, 25), PARIS, "2026-10-24T22:00:00", 25),
        (date(2026, 3, 29), LONDON, "2026-03-29T00:00:00", 23),
        (date(2026, 3, 29), ZULU, "2026-03-29T00:00:00", 24),
    ],
)
def test_day_bounds_run_midnight_to_midnight(
    day: date, zone: ZoneInfo, start: str, hours: int
) -> None:
    """A local day starts at its midnight and lasts 23 or 25 hours when the clocks change."""
    begins, ends = day_bounds(day, zone)
    assert (begins, ends - begins) == (utc(start), hours * 3600)
    assert day_of(begins, zone) == day and day_of(ends, zone) > day


@pytest.mark.parametrize(
    ("now", "zone", "days"),
    [
        (
            "2026-11-21T23:30:00",
            PARIS,
            [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)],
        ),
        ("2026-11-21T23:30:00", ZULU, [date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21)]),
        ("2026-03-01T12:00:00", ZULU, [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]),
    ],
)
def test_last_days_end_with_the_local_today(now: str, zone: ZoneInfo, days: list[date]) -> None:
    """The last days run oldest first up to the day it is in the zone."""
    assert last_days(utc(now), zone, 3) == days


def test_last_days_default_to_a_status_bar() -> None:
    """Without a count, the days are those of a 90-cell status bar, ending today."""
    days = last_days(utc("2026-11-21T12:00:00"), PARIS)
    assert (len(days), days[0], days[-1]) == (DAYS_SHOWN, date(2026, 8, 24), date(2026, 11, 21))


@pytest.mark.parametrize(
    ("at", "minute"),
    [(0.0, 0), (59.999, 0), (60.0, 60), (1_795_348_859.5, 1_795_348_800)],
)
def test_minute_of_is_the_start_of_the_minute(at: float, minute: int) -> None:
    """A time belongs to the minute that starts at or before it."""
    assert minute_of(at) == minute


@pytest.mark.parametrize(
    ("tallies", "expected"),
    [
        ([Tally("c", "d", total=10, ok=10)], 1.0),
        ([Tally("c", "d", total=10, ok=7)], 0.7),
        # Two failures inside a maintenance window: 7 of the 8 that count.
        ([Tally("c", "d", total=10, ok=7, excused=2)], 7 / 8),
        ([Tally("c", "d1", total=4, ok=3), Tally("c", "d2", total=6, ok=2, excused=2)], 5 / 8),
        ([Tally("c", "d", total=3, ok=0, excused=3)], None),  # all excused: nothing counts
        ([], None),
        # An inconsistent tally never yields more than 100 %.
        ([Tally("c", "d", total=4, ok=4, excused=1)], 1.0),
    ],
)
def test_ratio_ignores_excused_results(tallies: list[Tally], expected: float | None) -> None:
    """Availability is ok over the results that count, None when none does."""
    assert ratio(tallies) == expected


@pytest.mark.parametrize(
    ("check_ids", "expected"),
    [
        (["api", "web"], 0.5),  # the worst of 0.5 and 0.9
        (["web"], 0.9),
        (["web", "quiet"], 0.9),  # a check without data does not count as 0 or 1
        (["quiet"], None),
        (["maintained"], None),  # only excused results: no data
        ([], None),
    ],
)
def test_service_ratio_is_its_worst_check(check_ids: list[str], expected: float | None) -> None:
    """A service is as available as its worst check with data, and None without any."""
    tallies = [
        Tally("web", "2026-11-20", total=5, ok=5),
        Tally("web", "2026-11-21", total=5, ok=4),
        Tally("api", "2026-11-21", total=4, ok=2),
        Tally("maintained", "2026-11-21", total=2, ok=0, excused=2),
        Tally("other", "2026-11-21", total=9, ok=0),  # another service's check
    ]
    assert service_ratio(tallies, check_ids) == expected


def test_tallies_are_grouped_by_bucket_in_order() -> None:
    """Tallies of each bucket come together, in the order they were given."""
    a, b, c = Tally("x", "d1", 1, 1), Tally("y", "d2", 1, 0), Tally("y", "d1", 2, 2)
    assert dict(by_bucket([a, b, c])) == {"d1": [a, c], "d2": [b]}
    assert (a.counted, Tally("x", "d1", 5, 1, excused=3).counted) == (1, 2)
