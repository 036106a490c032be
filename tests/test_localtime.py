"""Operator times: local to daemon.timezone unless an offset is written; DST gaps refused."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from monitor.core.localtime import LocalTimeError, parse_local, show, show_iso

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-08 22:00", "2026-12-08T22:00:00+01:00"),  # winter: CET
        ("2026-07-08T22:00", "2026-07-08T22:00:00+02:00"),  # summer: CEST
        ("2026-12-08T22:00:00Z", "2026-12-08T22:00:00+00:00"),  # an offset wins
        ("2026-12-08T22:00-05:00", "2026-12-08T22:00:00-05:00"),
    ],
)
def test_a_time_without_offset_is_local_to_the_daemon(text: str, expected: str) -> None:
    """No offset means daemon.timezone; a written offset is kept."""
    assert parse_local(text, PARIS).isoformat() == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "2026-03-29 02:30",
            "2026-03-29 02:30 does not exist in Europe/Paris (the clocks skip it): "
            "write 2026-03-29T01:30:00+01:00 or 2026-03-29T03:30:00+02:00",
        ),
        (
            "2026-10-25 02:30",
            "2026-10-25 02:30 happens twice in Europe/Paris (the clocks go back): "
            "write 2026-10-25T02:30:00+02:00 or 2026-10-25T02:30:00+01:00",
        ),
        ("tomorrow", "expected a time such as 2026-12-08 22:00 (Europe/Paris) or"),
    ],
)
def test_unclear_local_times_are_refused_with_both_readings(text: str, error: str) -> None:
    """A skipped or doubled wall time names both instants it could mean."""
    with pytest.raises(LocalTimeError) as caught:
        parse_local(text, PARIS)
    assert str(caught.value).startswith(error)


def test_without_a_zone_an_offset_is_required() -> None:
    """No checks.yaml to read daemon.timezone from: the offset must be written."""
    with pytest.raises(LocalTimeError, match="write its offset"):
        parse_local("2026-12-08 22:00", None)
    assert parse_local("2026-12-08T22:00+01:00", None).utcoffset() is not None


def test_times_are_shown_in_the_zone_with_their_offset() -> None:
    """API times (UTC, Z) print local with the offset; none prints as '-'."""
    assert show_iso("2026-11-22T12:00:00Z", PARIS) == "2026-11-22 13:00:00+01:00"
    assert show_iso(None, PARIS) == "-"
    assert show(1795348800.0, ZoneInfo("Europe/London")) == "2026-11-22 12:00:00+00:00"
