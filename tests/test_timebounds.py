"""The span of accepted dates, and formatting that cannot raise whatever the time."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.core.render import format_time
from monitor.core.timebounds import EARLIEST, LATEST, check_moment, clamp
from monitor.domain.availability import day_of
from monitor.web.views import iso

EXTREMES = [-1e20, -1.0, 0.0, 253402300799.0, 1e20, math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("at", EXTREMES)
def test_formatting_any_time_never_raises(at: float) -> None:
    """Times far outside the span show as its edges in every zone and language."""
    for zone in ("Pacific/Kiritimati", "Europe/Paris", "Pacific/Pago_Pago"):
        for language in ("fr", "en"):
            assert "(" in format_time(at, zone=ZoneInfo(zone), language=language)
        assert day_of(at, ZoneInfo(zone)).year in (1999, 2000, 2199, 2200)
    assert iso(at) in ("2000-01-01T00:00:00Z", "2199-12-31T23:59:59Z")


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("2000-01-01T00:00:00+00:00", True),
        ("2199-12-31T23:59:59+00:00", True),
        ("1999-12-31T23:59:59+00:00", False),
        ("2200-01-01T00:00:00+00:00", False),
        ("9999-12-31T23:59:59+00:00", False),
        ("0001-01-01T00:00:00+00:00", False),
    ],
)
def test_dates_are_held_to_the_documented_span(text: str, accepted: bool) -> None:
    """2000-01-01 to 2199-12-31 UTC, edges included."""
    moment = datetime.fromisoformat(text)
    if accepted:
        assert check_moment(moment) == moment
    else:
        with pytest.raises(ValueError, match="between 2000-01-01 and 2199-12-31"):
            check_moment(moment)


def test_clamp_keeps_times_inside_the_span() -> None:
    """The edges are the span's own; NaN is its start."""
    assert clamp(math.nan) == EARLIEST.timestamp() == clamp(-math.inf)
    assert clamp(math.inf) == LATEST.timestamp()
    now = datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    assert clamp(now) == now
