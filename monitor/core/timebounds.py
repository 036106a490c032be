"""The span of dates forewarn accepts, and time formatting that cannot raise.

A maintenance window ending 9999-12-31 could not be written as a local time east of UTC
(year 10000): every commit failed and no notice went out (issue 17). Dates from config, the
CLI and the API are held to this span; formatting clamps into it, so a value that got in by
another way (an old database) shows as the span's edge rather than stopping the daemon.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
SPAN_TEXT = "between 2000-01-01 and 2199-12-31 (UTC)"
_LOW, _HIGH = EARLIEST.timestamp(), LATEST.timestamp()


def check_moment(moment: datetime) -> datetime:
    """``moment`` if it falls within the span; ValueError naming the span otherwise."""
    if not within(moment.timestamp()):
        raise ValueError(f"must be {SPAN_TEXT}")
    return moment


def within(at: float) -> bool:
    """True when the Unix time ``at`` falls within the span."""
    return _LOW <= at <= _HIGH


def clamp(at: float) -> float:
    """``at`` held within the span (NaN counts as its start)."""
    if math.isnan(at):
        return _LOW
    return min(max(at, _LOW), _HIGH)


def moment(at: float, zone: tzinfo = UTC) -> datetime:
    """The Unix time ``at`` as an aware datetime in ``zone``; never raises."""
    return datetime.fromtimestamp(clamp(at), zone)
