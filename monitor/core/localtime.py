"""Times as an operator writes and reads them: local to ``daemon.timezone``, with the offset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.core import timebounds


class LocalTimeError(ValueError):
    """A time that cannot be read, or that a daylight-saving change makes unclear."""


def parse_local(text: str, zone: ZoneInfo | None) -> datetime:
    """``text`` as an aware time: ISO 8601 with an offset, or without one meaning ``zone``.

    A local time that the clock skips (spring) or shows twice (autumn) is refused with both
    readings, so that the operator picks one: guessing could move a window by an hour.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        local = f"2026-12-08 22:00 ({zone.key}) or " if zone is not None else ""
        raise LocalTimeError(f"expected a time such as {local}2026-12-08T22:00+01:00") from None
    if moment.tzinfo is not None:
        return moment
    if zone is None:
        raise LocalTimeError("no daemon.timezone to read it in: write its offset (+01:00)")
    early, late = moment.replace(tzinfo=zone, fold=0), moment.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    # A list, not a set: aware times in one zone compare by wall time, ignoring fold.
    readings = " or ".join(_real(c).isoformat() for c in sorted([early, late], key=_instant))
    wall = f"{moment:%Y-%m-%d %H:%M}"
    if _real(early).replace(tzinfo=None) != moment:
        raise LocalTimeError(
            f"{wall} does not exist in {zone.key} (the clocks skip it): write {readings}"
        )
    raise LocalTimeError(
        f"{wall} happens twice in {zone.key} (the clocks go back): write {readings}"
    )


def _instant(moment: datetime) -> float:
    return moment.timestamp()


def _real(moment: datetime) -> datetime:
    """The wall time the zone really shows at that instant (a skipped time becomes real)."""
    zone = moment.tzinfo
    assert isinstance(zone, ZoneInfo)
    return datetime.fromtimestamp(moment.timestamp(), zone)


def show(at: float, zone: ZoneInfo) -> str:
    """A Unix time as an operator reads it: ``2026-11-22 13:02:00+01:00``; never raises."""
    return timebounds.moment(at, zone).isoformat(sep=" ", timespec="seconds")


def show_iso(value: str | None, zone: ZoneInfo) -> str:
    """An API time (ISO 8601, ``Z`` or an offset) in ``zone``; ``-`` for none."""
    if value is None:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # not a time after all: shown as the daemon gave it
    return show(moment.timestamp(), zone) if moment.tzinfo is not None else value
