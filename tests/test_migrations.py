"""One schema for both backends: the migrations apply on a real PostgreSQL as on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from monitor.store.migrations import MIGRATIONS, scripts
from monitor.store.sqlite import DB_NAME, SqliteStore
from tests.postgres_server import running_postgres


@pytest.fixture(scope="module")
def migrated() -> Iterator[str]:
    """The DSN of a throwaway PostgreSQL database, every migration applied in its transaction."""
    with running_postgres() as server:
        with psycopg.connect(server.dsn) as conn:
            for script in scripts("postgresql"):
                with conn.transaction():
                    conn.execute(script.encode())  # several statements: simple query protocol
        yield server.dsn


def sqlite_columns(folder: Path) -> dict[str, list[str]]:
    """Each table of a freshly migrated SQLite store, with its columns in order."""
    SqliteStore.open(folder).close()
    with sqlite3.connect(folder / DB_NAME) as conn:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for (t,) in names}


def test_every_migration_gives_postgresql_the_tables_and_columns_sqlite_has(
    migrated: str, tmp_path: Path
) -> None:
    """The same scripts, in PostgreSQL's spelling, build SQLite's schema column for column."""
    with psycopg.connect(migrated) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    assert found == sqlite_columns(tmp_path)
    assert len(scripts("postgresql")) == len(MIGRATIONS) and scripts("sqlite") == MIGRATIONS


def test_auto_numbered_keys_count_up_on_postgresql(migrated: str) -> None:
    """Transitions inserted without an id get increasing ids, as AUTOINCREMENT gives SQLite."""
    with psycopg.connect(migrated) as conn:
        ids = [
            conn.execute(
                "INSERT INTO transitions (check_id, old_status, new_status, at, detail) "
                "VALUES (%s, 'up', 'down', 1.5, '') RETURNING id",
                (check,),
            ).fetchone()
            for check in ("a", "b", "c")
        ]
    assert ids == [(1,), (2,), (3,)]
