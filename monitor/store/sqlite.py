"""The embedded Store: one SQLite file in WAL mode, versioned migrations, short transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.core.private import private_dir, private_file
from monitor.store.dialect import Db, SqliteDb, sql
from monitor.store.migrations import DATA_STEPS, MIGRATIONS
from monitor.store.sqlbase import SqlStore

DB_NAME = "forewarn.db"
_BUSY_TIMEOUT_MS = 5000
# The write-ahead log is folded into the database at every commit that leaves it holding
# this many pages (SQLite's default, said explicitly: the WAL bound below depends on it) …
WAL_AUTOCHECKPOINT_PAGES = 1000
# … and, once folded and restarted, cut back to this size rather than kept at its peak (SQLite
# keeps the file at its largest size by default). Between the two, the -wal file stays under
# WAL_AUTOCHECKPOINT_PAGES pages plus the transaction that crossed the threshold, unless a
# reader outside the daemon pins old pages; checkpoint() catches up once it lets go.
WAL_SIZE_LIMIT_BYTES = 1 << 20
# SQLite caps bound parameters per statement (999 on old builds).
_IN_CHUNK = 500
UTC = ZoneInfo("UTC")


class SqliteStore(SqlStore):
    """Store on one SQLite connection, used from the event-loop thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path, zone: ZoneInfo = UTC) -> None:
        self._conn = conn
        self._db = SqliteDb(conn)
        self.path = path
        self.zone = zone  # the daemon's: result_days holds its local calendar days

    @classmethod
    def open(cls, state_dir: Path, zone: ZoneInfo = UTC) -> SqliteStore:
        """Open (creating if needed) ``state_dir/forewarn.db`` and bring its schema up to date."""
        private_dir(state_dir)
        path = state_dir / DB_NAME
        private_file(path)  # SQLite gives its -wal and -shm files the database's mode
        # isolation_level=None: the module never opens transactions behind our back; every
        # write says BEGIN IMMEDIATE itself, so a writer waits for the lock up front instead
        # of failing on upgrade from a read lock.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS:d}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES:d}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES:d}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn, zone)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, zone)

    def _read(self) -> Db:
        """The connection, for statements outside a write transaction."""
        return self._db

    @contextmanager
    def _write(self, *, synced: bool = True) -> Iterator[Db]:
        """One BEGIN IMMEDIATE transaction; ``synced=False`` commits without an fsync."""
        if synced:
            with _immediate(self._conn):
                yield self._db
            return
        # Committed to the WAL file without waiting for the disk: safe from a crash of the
        # process (kill -9), not from a power cut, which can only lose the last few of these.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with _immediate(self._conn):
                yield self._db
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")

    def _suppressed_among(self, folded: list[str]) -> Iterable[str]:
        """Which of these folded addresses are suppressed, asked in chunks SQLite accepts."""
        for start in range(0, len(folded), _IN_CHUNK):
            chunk = folded[start : start + _IN_CHUNK]
            statement = sql(
                "SELECT address FROM suppressions "  # noqa: S608
                f"WHERE address IN ({', '.join('?' * len(chunk))})"
            )
            yield from (row[0] for row in self._db.execute(statement, chunk).fetchall())

    def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it, without waiting for any reader.

        TRUNCATE rather than PASSIVE, so that a quiet daemon leaves an empty -wal file; with
        no busy timeout, so that a reader outside the daemon (a backup, an operator's sqlite3)
        holding old pages makes this return at once with partial progress instead of
        stalling the event loop: the next call finishes the job.
        """
        self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS:d}")

    def close(self) -> None:
        """Release the database."""
        self._conn.close()


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that takes the write lock at BEGIN."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _migrate(conn: sqlite3.Connection, zone: ZoneInfo) -> None:
    """Apply each migration newer than ``PRAGMA user_version``, each in its own transaction."""
    for version, script in enumerate(MIGRATIONS, start=1):
        # The version is read under the write lock so two processes opening a fresh file
        # cannot both apply the same step.
        with _immediate(conn):
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema v{current} is newer than this forewarn "
                    f"(v{len(MIGRATIONS)}): upgrade forewarn"
                )
            if current >= version:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            if (step := DATA_STEPS.get(version)) is not None:
                step(SqliteDb(conn), zone)
            conn.execute(f"PRAGMA user_version = {version:d}")


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements (executescript would COMMIT our transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]!r}")
