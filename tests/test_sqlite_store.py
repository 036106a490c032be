"""The SQLite backend in its own files: migrations, pragmas, atomic transactions, its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.probes.base import ProbeResult, Reason
from monitor.store.sqlite import DB_NAME, MIGRATIONS, SqliteStore
from tests.builders import NOW, make_incident, make_notice, make_transition


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    """These tests read SQLite's own tables."""
    return sqlite_store


def count(path: Path, table: str) -> int:
    """Rows in ``table``, read through a separate connection (what is really committed)."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def test_migrations_run_once_and_reopening_keeps_data(tmp_path: Path) -> None:
    """Opening creates the latest schema; reopening migrates nothing and loses nothing."""
    state = tmp_path / "nested" / "state"
    first = SqliteStore.open(state)
    first.commit(incidents=[make_incident()], notices=[make_notice("inc-1:1:acme")])
    first.close()
    # A second run of migration 1 would fail on CREATE TABLE, so this proves it ran once.
    second = SqliteStore.open(state)
    try:
        assert second.get_incident("inc-1") == make_incident()
        assert second.pending_count() == 1
    finally:
        second.close()
    with sqlite3.connect(state / DB_NAME) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer forewarn is not opened (nor downgraded)."""
    SqliteStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStore.open(tmp_path)


def test_commit_is_atomic_when_one_row_is_invalid(store: SqliteStore) -> None:
    """A notice breaking NOT NULL rolls back the transitions and incident of the same batch."""
    bad = make_notice("inc-1:2:acme", subject=None)
    with pytest.raises(sqlite3.IntegrityError):
        store.commit(
            transitions=[make_transition(), make_transition("soap")],
            incidents=[make_incident()],
            notices=[make_notice("inc-1:1:acme"), bad],
        )
    for table in ("transitions", "incidents", "outbox"):
        assert count(store.path, table) == 0
    store.commit(transitions=[make_transition()])  # the connection is usable afterwards
    assert count(store.path, "transitions") == 1


def test_results_are_written_in_one_batch(store: SqliteStore) -> None:
    """Probe results land in the history with their reason."""
    store.write_results(
        [
            ProbeResult("tracking-ws", NOW, ok=True, duration_s=0.2),
            ProbeResult("tracking-ws", NOW + 15, ok=False, reason=Reason.TIMEOUT, duration_s=10.0),
        ]
    )
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute("SELECT at, ok, reason FROM results ORDER BY at").fetchall()
    assert rows == [(NOW, 1, None), (NOW + 15, 0, "timeout")]
