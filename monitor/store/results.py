"""Probe results in either SQL dialect: raw rows, minute and day aggregates, pruning."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from datetime import date
from zoneinfo import ZoneInfo

from monitor.domain.availability import Tally, day_bounds, day_of, minute_of
from monitor.probes.base import ProbeResult
from monitor.store.dialect import Db, sql

# Upserts add a batch's counts to what the bucket already holds, in one statement per row:
# PostgreSQL's ON CONFLICT DO UPDATE locks the row and adds to its latest version, so
# instances writing the same bucket at once both count. CASE rather than MAX(a, b): the
# two-argument MAX is SQLite's own.
_ADD_MINUTES = sql(
    "INSERT INTO result_minutes (check_id, minute, total, ok, excused) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (check_id, minute) DO UPDATE SET total = result_minutes.total + excluded.total, "
    "ok = result_minutes.ok + excluded.ok, excused = result_minutes.excused + excluded.excused"
)
_ADD_DAYS = sql(
    "INSERT INTO result_days (check_id, day, total, ok, excused, last_at) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (check_id, day) DO UPDATE SET total = result_days.total + excluded.total, "
    "ok = result_days.ok + excluded.ok, excused = result_days.excused + excluded.excused, "
    "last_at = CASE WHEN excluded.last_at > result_days.last_at "
    "THEN excluded.last_at ELSE result_days.last_at END"
)
# rowid (ctid on PostgreSQL) picks the victims so one statement deletes a bounded batch:
# neither dialect has DELETE … LIMIT.
_PRUNE_RESULTS = sql(
    "DELETE FROM results WHERE {rowid} IN "
    "(SELECT {rowid} FROM results WHERE at < ? ORDER BY at LIMIT ?)"
)
_PRUNE_MINUTES = sql(
    "DELETE FROM result_minutes WHERE {rowid} IN "
    "(SELECT {rowid} FROM result_minutes WHERE minute < ? ORDER BY minute LIMIT ?)"
)
_PRUNE_DAYS = sql(
    "DELETE FROM result_days WHERE {rowid} IN "
    "(SELECT {rowid} FROM result_days WHERE day < ? ORDER BY day LIMIT ?)"
)
_INSERT_RESULT = sql(
    "INSERT INTO results (check_id, at, ok, degraded, reason, duration_s) VALUES (?, ?, ?, ?, ?, ?)"
)
_ALL_RESULTS = sql("SELECT check_id, at, ok FROM results ORDER BY at")
_DAYS_FROM = sql(
    "SELECT check_id, day, total, ok, excused FROM result_days WHERE day >= ? "
    "ORDER BY day, check_id"
)
_MINUTES_FROM = sql(
    "SELECT check_id, minute, total, ok, excused FROM result_minutes WHERE minute >= ? "
    "ORDER BY minute, check_id"
)
_LAST_AT = sql("SELECT MAX(last_at) FROM result_days")
_BACKFILL_BATCH = 10_000

Row = tuple[str, float, bool, bool]
"""One result as the aggregates see it: check id, time, ok, excused."""

_Counts = list[float]  # total, ok, excused, last_at


def add(db: Db, rows: Iterable[Row], zone: ZoneInfo) -> None:
    """Add results to their minute and local-day aggregates (inside the caller's transaction)."""
    minutes: dict[tuple[str, int], _Counts] = {}
    days: dict[tuple[str, str], _Counts] = {}
    start = end = math.nan
    day = ""
    for check_id, at, ok, excused in rows:
        # Results of a batch are close in time: the day is recomputed only when one
        # leaves the current day's bounds (day_of on every row would dominate the cost).
        if not start <= at < end:
            local = day_of(at, zone)
            start, end = day_bounds(local, zone)
            if not start <= at < end:  # bounds that miss it (a skipped midnight?): no cache
                start = end = math.nan
            day = local.isoformat()
        for counts in (
            minutes.setdefault((check_id, minute_of(at)), [0, 0, 0, at]),
            days.setdefault((check_id, day), [0, 0, 0, at]),
        ):
            counts[0] += 1
            counts[1] += ok
            counts[2] += excused and not ok
            counts[3] = max(counts[3], at)
    # In key order: two instances adding to the same buckets lock them in the same order,
    # so neither waits for the other in a cycle (a deadlock PostgreSQL would break by error).
    db.executemany(_ADD_MINUTES, [(*key, *map(int, c[:3])) for key, c in sorted(minutes.items())])
    db.executemany(_ADD_DAYS, [(*key, *map(int, c[:3]), c[3]) for key, c in sorted(days.items())])


def write_results(
    db: Db,
    results: Sequence[ProbeResult],
    excused: Collection[int],
    zone: ZoneInfo,
) -> None:
    """Insert raw results and add them to their aggregates; ``excused`` holds positions."""
    marked = set(excused)
    if marked and not (min(marked) >= 0 and max(marked) < len(results)):
        raise ValueError(f"excused positions must be within the {len(results)} results")
    db.executemany(
        _INSERT_RESULT,
        [(r.check_id, r.at, r.ok, r.degraded, r.reason, r.duration_s) for r in results],
    )
    add(db, [(r.check_id, r.at, r.ok, i in marked) for i, r in enumerate(results)], zone)


def backfill(db: Db, zone: ZoneInfo) -> None:
    """Aggregate the results a pre-aggregate database already holds (migration 3).

    Nothing was recorded about maintenance windows then, so no old result is excused.
    """
    cursor = db.execute(_ALL_RESULTS)
    while batch := cursor.fetchmany(_BACKFILL_BATCH):
        # Rows are read in batches to bound memory; upserts merge buckets split across them.
        add(db, [(c, float(at), bool(ok), False) for c, at, ok in batch], zone)


def day_tallies(conn: Db, first_day: date) -> list[Tally]:
    """Per-check tallies of each local day from ``first_day`` on, by day then check."""
    rows = conn.execute(_DAYS_FROM, (first_day.isoformat(),)).fetchall()
    return [Tally(c, d, t, o, e) for c, d, t, o, e in rows]


def minute_tallies(conn: Db, since: float) -> list[Tally]:
    """Per-check tallies of each minute from the one holding ``since``, by minute then check."""
    rows = conn.execute(_MINUTES_FROM, (minute_of(since),)).fetchall()
    return [Tally(c, str(m), t, o, e) for c, m, t, o, e in rows]


def last_result_at(conn: Db) -> float | None:
    """When the latest aggregated result was taken, or None before any (an index lookup)."""
    row = conn.execute(_LAST_AT).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def prune(
    db: Db,
    before: float,
    limit: int,
    minutes_before: float,
    days_before: float,
    zone: ZoneInfo,
) -> int:
    """Delete at most ``limit`` rows, raw results first, then minute and day aggregates.

    Raw results go when taken before ``before``. An aggregate goes when its bucket ends
    before the bucket holding its cutoff begins: the minute of ``minutes_before``, the
    local day of ``days_before``. Returns how many rows went, all tables together.
    """
    left = limit
    for statement, cutoff in (
        (_PRUNE_RESULTS, before),
        (_PRUNE_MINUTES, minute_of(minutes_before)),
        (_PRUNE_DAYS, day_of(days_before, zone).isoformat()),
    ):
        if left <= 0:
            break
        left -= db.execute(statement, (cutoff, left)).rowcount
    return limit - left
