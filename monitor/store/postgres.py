"""The shared Store: PostgreSQL through psycopg 3, for several instances on one database.

Statements and their transactions are the SQLite store's (sqlbase.py); here are only the
connection (pgconnect.py), the migrations under an advisory lock, and list binding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from monitor.store.dialect import Db, sql
from monitor.store.migrations import DATA_STEPS, MIGRATIONS, scripts
from monitor.store.pgconnect import GuardedReads, Link, PgDb
from monitor.store.sqlbase import SqlStore

UTC = ZoneInfo("UTC")
# pg_advisory_xact_lock's key: "forewarn" as a big-endian bigint. Held by the transaction of
# each migration step, so instances starting together apply every step once, in order.
MIGRATION_LOCK = int.from_bytes(b"forewarn", "big", signed=True)
SCHEMA_TABLE = "forewarn_schema"  # one row: how many of MIGRATIONS this database has
_SUPPRESSED_AMONG = sql("SELECT address FROM suppressions WHERE address = ANY(?)")


class PostgresStore(SqlStore):
    """Store on one PostgreSQL connection, used from the event-loop thread."""

    def __init__(self, link: Link, zone: ZoneInfo = UTC) -> None:
        self._link = link
        self.zone = zone
        self._fence: Callable[[Db], None] | None = None

    @classmethod
    def open(
        cls,
        dsn: str,
        zone: ZoneInfo = UTC,
        *,
        password: str | None = None,
        upto: int | None = None,
        background: bool = False,
    ) -> PostgresStore:
        """Connect to ``dsn`` and bring its schema up to date (to version ``upto``, if given).

        ``background``: later reconnections happen on a thread (see ``Link``), as the daemon,
        whose event loop must not wait for a server that does not answer, wants.

        Raises ``StoreUnavailable`` when the server cannot be reached.
        """
        link = Link(dsn, password, background=background)
        try:
            link.connect_now()  # at start the daemon waits for its database
            migrate(link, zone, len(MIGRATIONS) if upto is None else upto)
        except BaseException:
            link.close()
            raise
        return cls(link, zone)

    @property
    def link(self) -> Link:
        """The connection, for the tests and for instance coordination to come."""
        return self._link

    def __repr__(self) -> str:
        return f"PostgresStore({self._link!r})"

    def _read(self) -> Db:
        """Each read on the link, outside any transaction."""
        return GuardedReads(self._link)

    @contextmanager
    def _write(self, *, synced: bool = True) -> Iterator[Db]:
        """One transaction; ``synced=False`` commits without waiting for the WAL flush."""
        with self._link.transaction(synced=synced) as db:
            if self._fence is not None:
                self._fence(db)
            yield db

    @contextmanager
    def fenced(self, fence: Callable[[Db], None]) -> Iterator[None]:
        """Within the block, each write first runs ``fence``, which raises to refuse it.

        The decider's commits are fenced by its lock: one that lost the lock (its session
        ended, another instance took over) cannot commit a decision after the new decider.
        """
        self._fence = fence
        try:
            yield
        finally:
            self._fence = None

    def _suppressed_among(self, folded: list[str]) -> Iterable[str]:
        """Which of these folded addresses are suppressed: one array parameter, any length."""
        return [row[0] for row in self._read().execute(_SUPPRESSED_AMONG, (folded,)).fetchall()]

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints its write-ahead log itself."""

    def close(self) -> None:
        """Release the connection."""
        self._link.close()


def migrate(link: Link, zone: ZoneInfo, upto: int) -> None:
    """Apply each migration up to ``upto`` this database lacks, each in its own transaction."""
    steps = scripts("postgresql")
    for version in range(1, upto + 1):
        with link.guarded() as conn, conn.transaction():
            # A migration may wait for another instance's, and may take longer than a
            # statement is usually allowed to.
            conn.execute("SET LOCAL lock_timeout = '60s'")
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            # Looked up before any CREATE: a role that may only use the tables (not create
            # them) then opens an up-to-date database, where CREATE … IF NOT EXISTS is refused.
            exists = conn.execute("SELECT to_regclass(%s)", (SCHEMA_TABLE,)).fetchone()
            if exists is None or exists[0] is None:
                conn.execute(f"CREATE TABLE {SCHEMA_TABLE} (version INTEGER NOT NULL)")
                conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (0)")  # noqa: S608
            row = conn.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchone()  # noqa: S608
            current = 0 if row is None else int(row[0])
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema v{current} is newer than this forewarn "
                    f"(v{len(MIGRATIONS)}): upgrade forewarn"
                )
            if current >= version:
                continue
            conn.execute(steps[version - 1])  # several statements: no parameters
            if (step := DATA_STEPS.get(version)) is not None:
                step(PgDb(conn), zone)
            conn.execute(f"UPDATE {SCHEMA_TABLE} SET version = %s", (version,))  # noqa: S608
