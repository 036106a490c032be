"""Heartbeat timing (monitor/probes/schedule.py): cron parsing and due times, as tables."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.probes.schedule import Calendar, Cron, Rule, due, last_run, parse_cron

PARIS = "Europe/Paris"
TORONTO = "America/Toronto"
WEEKDAYS = frozenset(range(5))
MINUTE, HOUR = 60.0, 3600.0


def at(zone: str, text: str) -> float:
    """UNIX time of a local ``YYYY-MM-DD HH:MM`` in ``zone``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone)).timestamp()


def calendar(zone: str = PARIS, days: frozenset[int] | None = None, *off: str) -> Calendar:
    """A calendar in ``zone`` working on ``days`` (all by default), with holidays ``off``."""
    return Calendar(
        zone=ZoneInfo(zone),
        working_days=frozenset(range(7)) if days is None else days,
        holidays=frozenset(date.fromisoformat(day) for day in off),
    )


@pytest.mark.parametrize(
    ("text", "minutes", "hours", "weekdays"),
    [
        ("*/15 * * * *", (45, 30, 15, 0), tuple(range(23, -1, -1)), frozenset(range(7))),
        ("0 6 * * 1-5", (0,), (6,), frozenset(range(5))),
        ("5,35 9-17/4 * * 0", (35, 5), (17, 13, 9), frozenset({6})),
        ("0 0 * * 7", (0,), (0,), frozenset({6})),
        ("10/20 0 * * 6,0", (50, 30, 10), (0,), frozenset({5, 6})),
    ],
)
def test_cron_fields_expand_stars_lists_ranges_and_steps(
    text: str, minutes: tuple[int, ...], hours: tuple[int, ...], weekdays: frozenset[int]
) -> None:
    """Each field form expands to the right values; 0 and 7 both mean Sunday."""
    cron = parse_cron(text)
    assert (cron.minutes, cron.hours, cron.weekdays) == (minutes, hours, weekdays)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day of week"),
        ("*/0 * * * *", "step"),
        ("5-3 * * * *", "outside"),
        ("a * * * *", "not a number"),
    ],
)
def test_malformed_cron_is_rejected_naming_the_field(text: str, message: str) -> None:
    """A wrong field count, value out of range, zero step or word is a ValueError."""
    with pytest.raises(ValueError, match=message):
        parse_cron(text)


def test_both_day_fields_restricted_match_either_as_cron_does() -> None:
    """``0 0 13 * 5`` fires on every 13th and on every Friday."""
    cron: Cron = parse_cron("0 0 13 * 5")
    assert cron.on(date(2026, 11, 13)) and cron.on(date(2026, 11, 20))  # 13th; a Friday
    assert not cron.on(date(2026, 11, 19))


@pytest.mark.parametrize(
    ("cron", "cal", "now", "expected"),
    [
        # Weekday 06:00 runs, Paris: Monday morning's run, then back to Friday over a weekend.
        ("0 6 * * 1-5", calendar(), "2026-11-23 06:00", "2026-11-23 06:00"),
        ("0 6 * * 1-5", calendar(), "2026-11-23 05:59", "2026-11-20 06:00"),
        ("0 6 * * 1-5", calendar(), "2026-11-22 12:00", "2026-11-20 06:00"),
        # A holiday on Monday skips that day's run.
        ("0 6 * * *", calendar(PARIS, None, "2026-11-23"), "2026-11-23 08:00", "2026-11-22 06:00"),
        # Working days restrict a daily schedule.
        ("30 22 * * *", calendar(PARIS, WEEKDAYS), "2026-11-23 08:00", "2026-11-20 22:30"),
        # The latest minute of the latest hour of the day comes first.
        ("*/20 8-9 * * *", calendar(), "2026-11-23 12:00", "2026-11-23 09:40"),
    ],
)
def test_last_run_finds_the_latest_scheduled_time_on_a_working_day(
    cron: str, cal: Calendar, now: str, expected: str
) -> None:
    """The latest run at or before ``now`` skips days off and holidays."""
    assert last_run(parse_cron(cron), cal, at(PARIS, now)) == at(PARIS, expected)


EVERY_HOUR = Rule(calendar=calendar(), grace=10 * MINUTE, every=HOUR)
OFFICE_HOURS = Rule(calendar=calendar(PARIS, WEEKDAYS, "2026-12-25"), grace=10 * MINUTE, every=HOUR)
MORNING_PARIS = Rule(calendar=calendar(PARIS), grace=30 * MINUTE, cron=parse_cron("0 6 * * 1-5"))
MORNING_TORONTO = Rule(
    calendar=calendar(TORONTO), grace=30 * MINUTE, cron=parse_cron("0 6 * * 1-5")
)


@pytest.mark.parametrize(
    ("rule", "since", "now", "overdue"),
    [
        # every 1h + 10m after a ping at 13:02: due 14:12.
        (EVERY_HOUR, "2026-11-20 13:02", "2026-11-20 14:12", None),
        (EVERY_HOUR, "2026-11-20 13:02", "2026-11-20 14:13", "2026-11-20 14:12"),
        # Friday 17:00 ping, working days only: quiet all weekend...
        (OFFICE_HOURS, "2026-11-20 17:00", "2026-11-21 12:00", None),
        (OFFICE_HOURS, "2026-11-20 17:00", "2026-11-22 23:59", None),
        # ...and on Monday the clock restarts at midnight, not from Friday.
        (OFFICE_HOURS, "2026-11-20 17:00", "2026-11-23 01:10", None),
        (OFFICE_HOURS, "2026-11-20 17:00", "2026-11-23 01:11", "2026-11-23 01:10"),
        # Christmas (a Friday) is a holiday; the following Monday restarts at midnight too.
        (OFFICE_HOURS, "2026-12-24 18:00", "2026-12-25 15:00", None),
        (OFFICE_HOURS, "2026-12-24 18:00", "2026-12-28 00:30", None),
        # Daily 06:00 on weekdays + 30m: late only after 06:30, and only if no ping since 06:00.
        (MORNING_PARIS, "2026-11-20 06:05", "2026-11-23 06:29", None),
        (MORNING_PARIS, "2026-11-20 06:05", "2026-11-23 06:31", "2026-11-23 06:30"),
        (MORNING_PARIS, "2026-11-23 06:10", "2026-11-23 18:00", None),
        (MORNING_PARIS, "2026-11-20 06:05", "2026-11-21 10:00", None),  # Saturday
        # Started after today's run: that run is not held against the job (no false alarm).
        (MORNING_PARIS, "2026-11-23 06:05", "2026-11-23 06:40", None),
        # The same schedule in Toronto is six hours behind Paris.
        (MORNING_TORONTO, "2026-11-22 12:00", "2026-11-23 12:00", None),
        (MORNING_TORONTO, "2026-11-22 12:00", "2026-11-23 13:00", "2026-11-23 12:30"),
        (MORNING_PARIS, "2026-11-22 12:00", "2026-11-23 12:00", "2026-11-23 06:30"),
    ],
)
def test_due_time_is_reported_only_once_a_ping_is_late(
    rule: Rule, since: str, now: str, overdue: str | None
) -> None:
    """``due`` is None while nothing is late, else when the missing ping was due (Paris times)."""
    expected = None if overdue is None else at(PARIS, overdue)
    assert due(rule, at(PARIS, since), at(PARIS, now)) == expected
