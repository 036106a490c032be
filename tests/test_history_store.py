"""Result aggregates in SqliteStore on real files: batches, local days, excuses, migration 3."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.domain.availability import Tally
from monitor.probes.base import ProbeResult
from monitor.store.sqlite import DB_NAME, MIGRATIONS, SqliteStore

PARIS = ZoneInfo("Europe/Paris")
# 2026-11-21 22:00:00 UTC, 23:00 in Paris: an hour before the Paris day ends.
EVENING = datetime(2026, 11, 21, 22, tzinfo=UTC).timestamp()

STORE_ZONE = PARIS  # days are Paris days here, with their DST changes


def result(at: float, ok: bool = True, check_id: str = "tracking-ws") -> ProbeResult:
    """One probe result."""
    return ProbeResult(check_id, at, ok=ok, duration_s=0.1)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` read through a separate connection (what is really committed)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_batches_add_up_in_minutes_and_days(store: SqliteStore) -> None:
    """Several batches landing in the same buckets are summed, not overwritten."""
    store.write_results([result(EVENING), result(EVENING + 30, ok=False)])
    store.write_results([result(EVENING + 45), result(EVENING + 60), result(EVENING, check_id="x")])
    store.write_results([result(EVENING + 90, ok=False)])
    minute = str(int(EVENING))
    assert store.minute_tallies(EVENING) == [
        Tally("tracking-ws", minute, total=3, ok=2),
        Tally("x", minute, total=1, ok=1),
        Tally("tracking-ws", str(int(EVENING) + 60), total=2, ok=1),
    ]
    assert store.day_tallies(date(2026, 11, 21)) == [
        Tally("tracking-ws", "2026-11-21", total=5, ok=3),
        Tally("x", "2026-11-21", total=1, ok=1),
    ]
    assert rows(store.path, "SELECT COUNT(*) FROM results") == [(6,)]


def test_degraded_results_count_as_ok(store: SqliteStore) -> None:
    """A slow but successful probe is available: it counts in ok."""
    store.write_results([ProbeResult("t", EVENING, ok=True, degraded=True)])
    assert store.day_tallies(date(2026, 11, 21)) == [Tally("t", "2026-11-21", 1, 1)]


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        (PARIS, [("2026-11-21", 1, 1), ("2026-11-22", 1, 0)]),  # 23:00 UTC is Paris midnight
        (ZoneInfo("UTC"), [("2026-11-21", 2, 1)]),
        (ZoneInfo("America/New_York"), [("2026-11-21", 2, 1)]),
    ],
)
def test_days_are_local_to_the_store_zone(
    tmp_path: Path, zone: ZoneInfo, days: list[tuple[str, int, int]]
) -> None:
    """The results a second either side of 23:00 UTC fall on the days of the store's zone."""
    store = SqliteStore.open(tmp_path, zone)
    try:
        store.write_results([result(EVENING + 3599), result(EVENING + 3600, ok=False)])
        tallies = store.day_tallies(date(2026, 11, 1))
    finally:
        store.close()
    assert [(t.bucket, t.total, t.ok) for t in tallies] == days


def test_a_day_with_a_clock_change_gathers_its_25_hours(store: SqliteStore) -> None:
    """Paris's 25-hour 25 October 2026 holds every result from its midnight to the next."""
    start = datetime(2026, 10, 24, 22, tzinfo=UTC).timestamp()  # 00:00 CEST
    store.write_results([result(start - 1), result(start), result(start + 25 * 3600 - 1)])
    store.write_results([result(start + 25 * 3600)])
    assert [(t.bucket, t.total) for t in store.day_tallies(date(2026, 10, 1))] == [
        ("2026-10-24", 1),
        ("2026-10-25", 2),
        ("2026-10-26", 1),
    ]


def test_excused_failures_count_in_total_and_excused(store: SqliteStore) -> None:
    """Results in a window count in total; the failed ones among them also in excused."""
    batch = [
        result(EVENING),
        result(EVENING + 1, ok=False),
        result(EVENING + 2, ok=False),  # failed in a window: excused
        result(EVENING + 3),  # succeeded in a window: plain ok
    ]
    store.write_results(batch, excused=[2, 3])
    (day,) = store.day_tallies(date(2026, 11, 21))
    (minute,) = store.minute_tallies(EVENING)
    assert day == Tally("tracking-ws", "2026-11-21", total=4, ok=2, excused=1)
    assert minute == Tally("tracking-ws", str(int(EVENING)), total=4, ok=2, excused=1)
    assert (day.counted, day.ok / day.counted) == (3, 2 / 3)


def test_an_excused_position_outside_the_batch_writes_nothing(store: SqliteStore) -> None:
    """A wrong position is refused before anything is written."""
    with pytest.raises(ValueError, match="within the 1 results"):
        store.write_results([result(EVENING)], excused=[1])
    assert store.day_tallies(date(2026, 1, 1)) == []
    assert rows(store.path, "SELECT COUNT(*) FROM results") == [(0,)]


def test_results_and_aggregates_commit_together(store: SqliteStore) -> None:
    """When the day aggregate cannot be written, the raw results roll back with it."""
    with sqlite3.connect(store.path) as conn:
        conn.execute("ALTER TABLE result_days RENAME TO result_days_away")
    with pytest.raises(sqlite3.OperationalError, match="result_days"):
        store.write_results([result(EVENING)])
    assert rows(store.path, "SELECT COUNT(*) FROM results") == [(0,)]
    assert rows(store.path, "SELECT COUNT(*) FROM result_minutes") == [(0,)]


def test_tallies_start_at_the_asked_day_and_minute(store: SqliteStore) -> None:
    """day_tallies starts at first_day; minute_tallies at the minute holding since."""
    day = 86400
    store.write_results([result(EVENING - 2 * day), result(EVENING - day), result(EVENING)])
    store.write_results([result(EVENING + 59), result(EVENING + 60), result(EVENING + 120)])
    assert [t.bucket for t in store.day_tallies(date(2026, 11, 20))] == [
        "2026-11-20",
        "2026-11-21",
    ]
    assert store.day_tallies(date(2026, 11, 22)) == []
    assert [(t.bucket, t.total) for t in store.minute_tallies(EVENING + 61)] == [
        (str(int(EVENING) + 60), 1),
        (str(int(EVENING) + 120), 1),
    ]
    assert store.minute_tallies(EVENING + 180) == []


def test_last_result_at_is_the_latest_result_taken(store: SqliteStore) -> None:
    """None before any result, then the latest time, even when a batch arrives late."""
    assert store.last_result_at() is None
    store.write_results([result(EVENING), result(EVENING + 7.5, check_id="x")])
    store.write_results([result(EVENING - 3600)])  # a late batch from earlier
    assert store.last_result_at() == EVENING + 7.5
    store.write_results([result(EVENING + 7200)])  # tomorrow in Paris
    assert store.last_result_at() == EVENING + 7200


def make_v2_database(state: Path, results: list[tuple[str, float, bool]]) -> None:
    """A database as forewarn left it before aggregates: migrations 1 and 2, raw results."""
    state.mkdir(parents=True)
    conn = sqlite3.connect(state / DB_NAME)
    try:
        for script in MIGRATIONS[:2]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 2")
        conn.executemany(
            "INSERT INTO results (check_id, at, ok, degraded, reason, duration_s) "
            "VALUES (?, ?, ?, FALSE, NULL, 0.1)",
            results,
        )
        conn.commit()
    finally:
        conn.close()


def test_upgrading_a_v2_database_keeps_its_history(tmp_path: Path) -> None:
    """Migration 3 aggregates the results already stored, in the zone the store opens with."""
    state = tmp_path / "state"
    # Every half second from 23:00 to 00:40 in Paris: more rows than the backfill reads at
    # once, so buckets split across reads must merge, and the first hour is the 20th.
    many = [("t", EVENING - 86400 + i * 0.5, i % 4 != 0) for i in range(12_000)]
    make_v2_database(state, [*many, ("t", EVENING + 3600, False), ("u", EVENING + 3599, True)])
    store = SqliteStore.open(state, PARIS)
    try:
        assert store.day_tallies(date(2026, 11, 1)) == [
            Tally("t", "2026-11-20", total=7_200, ok=5_400),
            Tally("t", "2026-11-21", total=4_800, ok=3_600),
            Tally("u", "2026-11-21", total=1, ok=1),
            Tally("t", "2026-11-22", total=1, ok=0),
        ]
        assert sum(t.total for t in store.minute_tallies(0)) == 12_002
        assert store.minute_tallies(EVENING + 3600) == [Tally("t", str(int(EVENING) + 3600), 1, 0)]
        assert store.last_result_at() == EVENING + 3600
        # New results add to the backfilled buckets.
        store.write_results([result(EVENING + 3601, check_id="t")])
        assert store.day_tallies(date(2026, 11, 22)) == [Tally("t", "2026-11-22", 2, 1)]
    finally:
        store.close()
    assert rows(state / DB_NAME, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert rows(state / DB_NAME, "SELECT COUNT(*) FROM results") == [(12_003,)]


def test_reopening_does_not_count_results_twice(tmp_path: Path) -> None:
    """The backfill belongs to migration 3: a later open adds nothing."""
    store = SqliteStore.open(tmp_path, PARIS)
    store.write_results([result(EVENING)])
    store.close()
    store = SqliteStore.open(tmp_path, PARIS)
    try:
        assert store.day_tallies(date(2026, 11, 21)) == [Tally("tracking-ws", "2026-11-21", 1, 1)]
    finally:
        store.close()


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    """These tests read SQLite's own tables: its backend, whichever others exist."""
    return sqlite_store
