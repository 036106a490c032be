"""What the PostgreSQL store does beyond the contract: several instances on one database.

The contract itself (tests/test_store_contract.py and every test taking ``store``) runs on
both backends; here are migrations racing, DATA_STEPS, concurrent writers and claims, all
on the session's real server (tests/conftest.py), each test on a database of its own.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from monitor.domain.availability import Tally, minute_of
from monitor.probes.base import ProbeResult
from monitor.store.migrations import MIGRATIONS
from monitor.store.postgres import MIGRATION_LOCK, SCHEMA_TABLE, PostgresStore
from tests.builders import NOW, make_notice
from tests.postgres_server import PostgresServer
from tests.test_migrations import sqlite_columns

UTC = ZoneInfo("UTC")
_names = itertools.count(1)
DAY = datetime.fromtimestamp(NOW, UTC).date()


@pytest.fixture
def empty_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """A database with no schema at all, as a first instance finds it."""
    name = f"empty_{next(_names)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn_of(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def waiting_for_advisory_lock(dsn: str) -> int:
    """How many sessions wait for an advisory lock on ``dsn``'s server."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` every 20 ms, failing after 10 s."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_two_instances_starting_together_migrate_once(empty_dsn: str) -> None:
    """Two openers racing on an empty database both start; each step was applied once."""
    with psycopg.connect(empty_dsn) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        with ThreadPoolExecutor(2) as pool:
            opening = [pool.submit(PostgresStore.open, empty_dsn) for _ in range(2)]
            # Both are queued behind the lock before either may apply anything.
            wait_for(lambda: waiting_for_advisory_lock(empty_dsn) == 2)
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            stores = [future.result(timeout=30) for future in opening]
    try:
        with psycopg.connect(empty_dsn) as conn:
            versions = conn.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchall()  # noqa: S608
        assert versions == [(len(MIGRATIONS),)]
        stores[0].commit(notices=[make_notice("k1")])
        assert stores[1].pending_count() == 1
    finally:
        for store in stores:
            store.close()


def test_a_newer_schema_is_refused(pg_dsn: str) -> None:
    """A database migrated by a newer forewarn is not touched by this one."""
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(f"UPDATE {SCHEMA_TABLE} SET version = %s", (len(MIGRATIONS) + 1,))  # noqa: S608
    with pytest.raises(RuntimeError, match="newer than this forewarn"):
        PostgresStore.open(pg_dsn)


def test_the_version_3_backfill_runs_on_postgresql(empty_dsn: str) -> None:
    """Results written before the aggregates existed are summed into them by DATA_STEPS."""
    PostgresStore.open(empty_dsn, UTC, upto=2).close()
    with psycopg.connect(empty_dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO results (check_id, at, ok, degraded, reason, duration_s) "
            "VALUES (%s, %s, %s, false, NULL, 0.1)",
            [("api", NOW + i, i % 4 != 0) for i in range(10)],
        )
    store = PostgresStore.open(empty_dsn, UTC)
    try:
        day = DAY
        assert store.day_tallies(day) == [Tally("api", day.isoformat(), 10, 7, 0)]
        assert store.last_result_at() == NOW + 9
    finally:
        store.close()


def test_two_instances_adding_to_the_same_buckets_lose_no_count(pg_dsn: str) -> None:
    """Concurrent upserts into one minute and one day from two connections all add up."""
    stores = [PostgresStore.open(pg_dsn, UTC) for _ in range(2)]
    batches, size = 40, 25
    start = threading.Barrier(2)

    def write(store: PostgresStore, offset: float) -> None:
        start.wait()
        for batch in range(batches):
            store.write_results(
                [
                    # Two checks in each batch, so that both instances lock several rows.
                    ProbeResult(("api", "web")[i % 2], NOW + offset + batch * 0.001, i % 5 != 0)
                    for i in range(size)
                ]
            )

    try:
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(write, s, i * 0.0001) for i, s in enumerate(stores)]:
                future.result(timeout=60)
        minute, day = str(minute_of(NOW)), DAY.isoformat()
        # Each batch holds 13 results of api (10 ok) and 12 of web (10 ok); 2 × 40 batches.
        assert stores[0].minute_tallies(NOW) == [
            Tally("api", minute, 2 * batches * 13, 2 * batches * 10),
            Tally("web", minute, 2 * batches * 12, 2 * batches * 10),
        ]
        assert [t.total for t in stores[1].day_tallies(DAY)] == [
            2 * batches * 13,
            2 * batches * 12,
        ]
        assert {t.bucket for t in stores[1].day_tallies(DAY)} == {day}
    finally:
        for store in stores:
            store.close()


def test_two_instances_claiming_at_once_never_share_a_notice(pg_dsn: str) -> None:
    """Instances draining one outbox together each get distinct notices, and all of them."""
    stores = [PostgresStore.open(pg_dsn, UTC) for _ in range(2)]
    keys = [f"inc-1:1:c{i:03d}" for i in range(120)]
    stores[0].commit(notices=[make_notice(k, NOW + i * 0.001) for i, k in enumerate(keys)])
    start = threading.Barrier(2)

    def drain(store: PostgresStore, owner: str) -> list[str]:
        start.wait()
        taken: list[str] = []
        while items := store.claim_due(NOW + 10, 3, owner, lease_s=300):
            taken += [item.notice.key for item in items]
            for item in items:
                store.mark_sent(item.notice.key, NOW + 10)
        return taken

    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(drain, s, f"instance-{i}") for i, s in enumerate(stores)]
            first, second = (future.result(timeout=60) for future in futures)
        assert not set(first) & set(second)
        assert sorted(first + second) == keys
        assert first and second, "both instances should have taken a share"
        assert stores[1].pending_count() == 0
        assert all(stores[0].deliveries(k) == [(NOW + 10, "sent", "")] for k in keys)
    finally:
        for store in stores:
            store.close()


def test_a_notice_claimed_elsewhere_is_skipped_not_waited_for(pg_dsn: str) -> None:
    """A claim in an open transaction elsewhere does not block this one: it takes the next."""
    store = PostgresStore.open(pg_dsn, UTC)
    store.commit(notices=[make_notice("a", NOW), make_notice("b", NOW + 1)])
    try:
        with psycopg.connect(pg_dsn) as other:
            # Another instance's claim of "a", its transaction not yet committed.
            other.execute("SELECT key FROM outbox WHERE key = 'a' FOR UPDATE")
            assert [i.notice.key for i in store.claim_due(NOW + 5, 10, "me", 60)] == ["b"]
    finally:
        store.close()


def test_a_store_opened_on_postgresql_has_sqlite_tables_and_its_schema_counter(
    empty_dsn: str, tmp_path: Path
) -> None:
    """PostgresStore.open builds SQLite's tables column for column, plus forewarn_schema."""
    PostgresStore.open(empty_dsn).close()
    with psycopg.connect(empty_dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    assert found.pop(SCHEMA_TABLE) == ["version"]
    assert found == sqlite_columns(tmp_path)
