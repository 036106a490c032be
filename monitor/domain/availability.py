"""Availability from aggregated results: local days, per-check counts and per-service ratios."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.core.timebounds import moment

DAYS_SHOWN = 90  # cells in a status-page bar, today included
MINUTE_KEEP_S = 35 * 86400  # per-minute aggregates outlive raw results: a month of detail
DAY_KEEP_S = 400 * 86400  # per-day aggregates: a little over a year, for yearly figures


@dataclass(frozen=True, slots=True)
class Tally:
    """Results of one check in one bucket (a minute or a local day)."""

    check_id: str
    bucket: str  # "2026-11-21" for a day, the minute's Unix start as text for a minute
    total: int
    ok: int  # succeeded, degraded included
    excused: int = 0  # failed inside a maintenance window: not counted against availability

    @property
    def counted(self) -> int:
        """Results that count towards availability."""
        return self.total - self.excused


def day_of(at: float, zone: ZoneInfo) -> date:
    """The local calendar day a Unix time falls on."""
    return moment(at, zone).date()


def minute_of(at: float) -> int:
    """The Unix start of the minute ``at`` falls in."""
    return int(at // 60 * 60)


def last_days(now: float, zone: ZoneInfo, count: int = DAYS_SHOWN) -> list[date]:
    """The ``count`` local days up to and including today, oldest first."""
    today = day_of(now, zone)
    return [today - timedelta(days=back) for back in range(count - 1, -1, -1)]


def day_bounds(day: date, zone: ZoneInfo) -> tuple[float, float]:
    """A local day's start and end as Unix times (23 or 25 hours on DST days)."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    # Aware arithmetic within one zone is wall-clock: midnight to midnight.
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def ratio(tallies: Iterable[Tally]) -> float | None:
    """Share of counted results that succeeded; None without any."""
    counted = ok = 0
    for tally in tallies:
        counted += tally.counted
        ok += min(tally.ok, tally.counted)
    return ok / counted if counted else None


def service_ratio(tallies: Iterable[Tally], check_ids: Sequence[str]) -> float | None:
    """A service's availability: that of its worst check with data, so one failure shows."""
    by_check: dict[str, list[Tally]] = {}
    for tally in tallies:
        if tally.check_id in check_ids:
            by_check.setdefault(tally.check_id, []).append(tally)
    ratios = [r for r in (ratio(ts) for ts in by_check.values()) if r is not None]
    return min(ratios, default=None)


def by_bucket(tallies: Iterable[Tally]) -> Mapping[str, list[Tally]]:
    """Tallies grouped by bucket."""
    grouped: dict[str, list[Tally]] = {}
    for tally in tallies:
        grouped.setdefault(tally.bucket, []).append(tally)
    return grouped
