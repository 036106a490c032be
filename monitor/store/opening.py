"""Which Store a daemon opens: SQLite in its state folder, or the PostgreSQL it is given."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.store.base import Store
from monitor.store.sqlite import SqliteStore

INSTALL = "pip install 'forewarn[postgresql]'"


class DriverMissing(Exception):
    """``daemon.database`` is set but psycopg (or the libpq it needs) cannot be imported."""


def open_store(
    state_dir: Path, zone: ZoneInfo, database: str | None = None, password: str | None = None
) -> Store:
    """The SQLite store in ``state_dir``, or the PostgreSQL one when ``database`` is set.

    Raises ``StoreUnavailable`` when that PostgreSQL cannot be reached, ``DriverMissing``
    when psycopg is not installed.
    """
    if database is None:
        return SqliteStore.open(state_dir, zone)
    try:
        # Imported only here: a SQLite daemon runs without psycopg installed.
        from monitor.store.postgres import PostgresStore
    except ImportError as exc:
        raise DriverMissing(
            f"daemon.database needs the PostgreSQL driver ({exc}): {INSTALL}"
        ) from None
    return PostgresStore.open(database, zone, password=password)
