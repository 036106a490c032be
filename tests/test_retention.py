"""Retention on real SQLite files: what goes, what stays, and an event loop that keeps turning."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from zoneinfo import ZoneInfo

import pytest
import structlog

from monitor.domain.availability import DAY_KEEP_S, MINUTE_KEEP_S, day_of
from monitor.probes.base import ProbeResult
from monitor.store.retention import prune_history, prune_in_chunks, retention_loop
from monitor.store.sqlite import SqliteStore
from tests.waiting import until

PARIS = ZoneInfo("Europe/Paris")
NOW = 1_795_348_800.0  # 2026-11-22 09:00 in Paris
HOUR = 3600.0
DAY = 86400.0

STORE_ZONE = PARIS  # days are Paris days here, with their DST changes


def every_ten_seconds(store: SqliteStore, count: int = 1000) -> None:
    """``count`` results, one every 10 s back from NOW, one in four failed."""
    store.write_results(
        [ProbeResult("t", NOW - 10 * i, ok=i % 4 != 0, duration_s=0.1) for i in range(count)]
    )


def raw_times(store: SqliteStore) -> list[float]:
    """The times of the raw results left, read through a separate connection."""
    with sqlite3.connect(store.path) as conn:
        return [at for (at,) in conn.execute("SELECT at FROM results ORDER BY at")]


async def test_prune_removes_only_results_older_than_the_cutoff_in_chunks(
    store: SqliteStore,
) -> None:
    """Results taken before now - retention go, 100 per chunk; the one at the cutoff stays."""
    every_ten_seconds(store)
    run = await prune_in_chunks(store, NOW, HOUR, chunk=100)
    left = raw_times(store)
    # Results 361 to 999 (10 s apart) are older than an hour; result 360 is exactly an hour.
    assert (run.rows, run.chunks) == (639, 7)
    assert (len(left), left[0], left[-1]) == (361, NOW - HOUR, NOW)
    assert run.longest_chunk_ms <= run.duration_ms
    again = await prune_in_chunks(store, NOW, HOUR, chunk=100)
    assert (again.rows, again.chunks, len(raw_times(store))) == (0, 1, 361)


async def test_aggregates_survive_raw_pruning(store: SqliteStore) -> None:
    """Minute and day tallies and the last result time outlive the raw rows they sum."""
    every_ten_seconds(store)
    days_before = store.day_tallies(date(2026, 11, 1))
    minutes_before = store.minute_tallies(0)
    assert await prune_history(store, NOW + 30 * DAY, HOUR) == 1000
    assert raw_times(store) == []
    assert store.day_tallies(date(2026, 11, 1)) == days_before
    assert store.minute_tallies(0) == minutes_before
    assert sum(t.total for t in days_before) == 1000
    assert store.last_result_at() == NOW


async def test_aggregates_expire_after_their_own_keep(store: SqliteStore) -> None:
    """Minute rows go after MINUTE_KEEP_S and day rows after DAY_KEEP_S, counted in rows."""
    old_minute = NOW - MINUTE_KEEP_S - 120  # its minute row is due, its day row is not
    old_day = NOW - DAY_KEEP_S - 2 * DAY  # both rows due
    store.write_results([ProbeResult("t", at, ok=True) for at in (old_day, old_minute, NOW)])
    # A day later with a day's retention: the 2 old raw results, their 2 minute rows and
    # the old day row go.
    assert await prune_history(store, NOW + DAY, DAY) == 2 + 2 + 1
    assert [t.bucket for t in store.minute_tallies(0)] == [str(int(NOW))]
    assert [t.bucket for t in store.day_tallies(date(2000, 1, 1))] == [
        day_of(old_minute, PARIS).isoformat(),
        day_of(NOW, PARIS).isoformat(),
    ]


async def test_a_retention_longer_than_the_minute_keep_keeps_the_minutes(
    store: SqliteStore,
) -> None:
    """Aggregates never expire before the raw results they sum."""
    at = NOW - MINUTE_KEEP_S - HOUR
    store.write_results([ProbeResult("t", at, ok=True)])
    assert await prune_history(store, NOW, MINUTE_KEEP_S + DAY) == 0
    assert [t.total for t in store.minute_tallies(0)] == [1]


async def test_other_tasks_run_between_chunks(store: SqliteStore) -> None:
    """A task that counts its turns gets one between every two chunks: the loop is not held."""
    every_ten_seconds(store)
    turns = 0

    async def spin() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    spinner = asyncio.create_task(spin())
    try:
        run = await prune_in_chunks(store, NOW + DAY, HOUR, chunk=50)
    finally:
        spinner.cancel()
    assert run.chunks == 21  # 20 full chunks and an empty one
    assert turns >= run.chunks - 1


async def test_prune_history_logs_one_event_per_run(store: SqliteStore) -> None:
    """One `pruned` event says how many rows and chunks, and how long the longest chunk took."""
    every_ten_seconds(store)
    with structlog.testing.capture_logs() as logs:
        rows = await prune_history(store, NOW, HOUR, chunk=100)
    (event,) = logs
    assert (event["event"], event["rows"], event["chunks"], rows) == ("pruned", 639, 7, 639)
    assert 0 <= event["longest_chunk_ms"] <= event["duration_ms"]


async def test_the_loop_goes_on_after_a_failed_run(store: SqliteStore) -> None:
    """A run that fails is logged; the next one, once the database is back, prunes."""
    every_ten_seconds(store)
    with sqlite3.connect(store.path) as conn:
        conn.execute("ALTER TABLE results RENAME TO results_away")
    with structlog.testing.capture_logs() as logs:
        loop = asyncio.create_task(
            retention_loop(store, HOUR, lambda: NOW, every=0.01, first_after=0)
        )
        try:
            await until(lambda: any(e["event"] == "prune_failed" for e in logs), timeout_s=2)
            with sqlite3.connect(store.path) as conn:
                conn.execute("ALTER TABLE results_away RENAME TO results")
            await until(lambda: any(e.get("rows") == 639 for e in logs), timeout_s=2)
            assert not loop.done()
        finally:
            loop.cancel()
    failed = next(e for e in logs if e["event"] == "prune_failed")
    assert "no such table: results" in failed["error"]
    assert len(raw_times(store)) == 361
    with pytest.raises(asyncio.CancelledError):
        await loop


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    """These tests read SQLite's own tables: its backend, whichever others exist."""
    return sqlite_store
