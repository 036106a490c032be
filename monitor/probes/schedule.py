"""When a heartbeat is due: 5-field cron, working days and holidays. Pure: ``now`` is given.

Cron fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12) and day of
week (0-7, 0 and 7 are Sunday), each ``*``, a number, a range ``a-b``, a step ``*/n``,
``a-b/n`` or ``a/n``, or a comma-separated list of those. As in cron, when both day fields
are restricted a day matching either one counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Python's weekday() order
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))
_SEARCH_DAYS = 2 * 366  # far enough back for any schedule that fires at least every year


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; weekdays in Python's numbering (Monday is 0)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool  # day of month is ``*``
    any_weekday: bool  # day of week is ``*``

    def on(self, day: date) -> bool:
        """Whether the schedule fires at all on ``day``."""
        if day.month not in self.months:
            return False
        by_day, by_weekday = day.day in self.days, day.weekday() in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday


def _values(text: str, name: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, name) if step_text else 1
        if step < 1:
            raise ValueError(f"{name}: step must be at least 1 in {part!r}")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, name), _number(last, name)
        else:
            start = _number(span, name)
            end = high if step_text else start
        if not (low <= start <= end <= high):
            raise ValueError(f"{name}: {part!r} is outside {low}-{high}")
        out.update(range(start, end + 1, step))
    return out


def _number(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name}: {text!r} is not a number")
    return int(text)


def parse_cron(text: str) -> Cron:
    """Read ``"0 6 * * 1-5"``; raise ValueError naming the faulty field."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{text!r} must have 5 fields: minute hour day month weekday")
    minute, hour, day, month = (
        _values(part, name, low, high)
        for part, (name, low, high) in zip(parts, _FIELDS, strict=False)
    )
    weekdays = {(value - 1) % 7 for value in _values(parts[4], "day of week", 0, 7)}
    return Cron(
        minutes=tuple(sorted(minute, reverse=True)),
        hours=tuple(sorted(hour, reverse=True)),
        days=frozenset(day),
        months=frozenset(month),
        weekdays=frozenset(weekdays),
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )


@dataclass(frozen=True)
class Calendar:
    """The days on which a heartbeat is expected, in its timezone."""

    zone: ZoneInfo
    working_days: frozenset[int] = frozenset(range(7))
    holidays: frozenset[date] = field(default_factory=frozenset)

    def works(self, day: date) -> bool:
        """Whether pings are expected on ``day``."""
        return day.weekday() in self.working_days and day not in self.holidays

    @property
    def every_day(self) -> bool:
        """True when no day is ever off."""
        return len(self.working_days) == 7 and not self.holidays


@dataclass(frozen=True)
class Rule:
    """``every`` + ``grace``, or a cron ``schedule`` + ``grace``, on a calendar."""

    calendar: Calendar
    grace: float
    every: float | None = None
    cron: Cron | None = None


def last_run(cron: Cron, calendar: Calendar, at: float) -> float | None:
    """The latest scheduled time at or before ``at`` on a working day (UNIX seconds)."""
    local = datetime.fromtimestamp(at, calendar.zone)
    for back in range(_SEARCH_DAYS):
        day = local.date() - timedelta(days=back)
        if not (cron.on(day) and calendar.works(day)):
            continue
        for hour in cron.hours:
            for minute in cron.minutes:
                stamp = datetime.combine(day, time(hour, minute), calendar.zone).timestamp()
                if stamp <= at:
                    return stamp
    return None


def due(rule: Rule, since: float, now: float) -> float | None:
    """When a ping was due that has not come since ``since``; None while none is overdue.

    ``since`` is the last ping, or the daemon's start when none came yet, so a restart
    never raises a false alarm.
    """
    if rule.cron is not None:
        scheduled = last_run(rule.cron, rule.calendar, now - rule.grace)
        if scheduled is None or scheduled <= since:
            return None
        return scheduled + rule.grace
    if rule.every is None:  # the settings require every or schedule
        return None
    calendar = rule.calendar
    if not calendar.every_day:
        today = datetime.fromtimestamp(now, calendar.zone).date()
        if not calendar.works(today):
            return None  # a day off: nothing is expected
        if not calendar.works(today - timedelta(days=1)):
            # The first working day after days off: the clock starts at midnight.
            since = max(since, datetime.combine(today, time(), calendar.zone).timestamp())
    deadline = since + rule.every + rule.grace
    return deadline if now > deadline else None
