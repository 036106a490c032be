"""The PostgreSQL connection of a store: fails fast, and reconnects at most every few seconds.

The Store is synchronous and called on the event loop, so a database that does not answer
must cost little: libpq gives up on connecting after ``connect_timeout``, on a peer that
stopped acknowledging after ``tcp_user_timeout``, and the server ends a statement after
``statement_timeout``. A call that finds the connection lost raises ``StoreUnavailable``;
the next call reconnects once, and when that fails too the following calls raise at once,
without touching the network, until ``RECONNECT_EVERY_S`` has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from monitor.store.base import StoreUnavailable
from monitor.store.dialect import Rows, Sql

RECONNECT_EVERY_S = 5.0
# Reconnections of background links: a handful of threads, idle ones not kept alive.
_CONNECTING = ThreadPoolExecutor(4, thread_name_prefix="pg-connect")
STATEMENT_TIMEOUT_MS = 5000  # the SQLite store's busy timeout: a stuck statement fails, visibly
LOCK_TIMEOUT_MS = 3000
# libpq settings a DSN does not give (a DSN's own win): fail fast on a dead or silent server.
DEFAULTS = {
    "connect_timeout": "5",
    "tcp_user_timeout": "10000",  # ms: unacknowledged data means the peer is gone
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "application_name": "forewarn",
}


def conninfo(dsn: str, name: str | None = None) -> str:
    """``dsn`` (a URI or key=value string) completed with the fail-fast ``DEFAULTS``.

    ``name``, when given, is the session's ``application_name`` whatever the DSN says: the
    decider's lock session is found by it.
    """
    given = conninfo_to_dict(dsn)
    named = {} if name is None else {"application_name": name}
    return make_conninfo("", **{**DEFAULTS, **given, **named})


def first_line(error: BaseException) -> str:
    """libpq's message without its hints: one line for a log or a store error."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Link:
    """One autocommit psycopg connection, opened on demand and replaced when lost.

    Autocommit, because a transaction is always said explicitly (``transaction()``): a read
    then never leaves the session idle in a transaction, holding back vacuum.
    """

    def __init__(
        self,
        dsn: str,
        password: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        reconnect_every: float = RECONNECT_EVERY_S,
        background: bool = False,
        name: str | None = None,
    ) -> None:
        self._conninfo = conninfo(dsn, name)
        self._password = password  # handed to libpq only; never in a message or repr
        self._clock = clock
        self._reconnect_every = reconnect_every
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._failed_at: float | None = None  # when the last attempt to connect failed
        self._error = ""
        self.attempts = 0  # connections tried, for the tests and the logs
        self._background = background
        self._pending: Future[psycopg.Connection[tuple[Any, ...]]] | None = None

    def __repr__(self) -> str:
        where = conninfo_to_dict(self._conninfo)
        return f"Link(host={where.get('host', '')!r}, dbname={where.get('dbname', '')!r})"

    def connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The open connection, connecting first if there is none (and a retry is due).

        A ``background`` link reconnects on a thread of its own: the call that starts it, and
        those while it runs, raise at once, so a server that does not answer (rather than
        refuses) costs the event loop nothing. Its first connection is ``connect_now``'s.
        """
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._pending is not None:
            return self._adopt()
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._reconnect_every:
            wait = self._reconnect_every - (now - self._failed_at)
            raise StoreUnavailable(f"PostgreSQL unreachable: {self._error} (retry in {wait:.0f} s)")
        self.attempts += 1
        if self._background:
            self._pending = _CONNECTING.submit(self._open, now)
            raise StoreUnavailable("PostgreSQL: reconnecting")
        self._conn = self._open(now)
        return self._conn

    def connect_now(self) -> None:
        """Connect on this thread, waiting as long as libpq does (at start, before probing)."""
        if self._conn is None or self._conn.closed:
            self.attempts += 1
            self._conn = self._open(self._clock())

    def _adopt(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The background connection once made; its error once it failed."""
        pending = self._pending
        assert pending is not None
        if not pending.done():
            raise StoreUnavailable("PostgreSQL: still reconnecting")
        self._pending = None
        self._conn = pending.result()  # raises the StoreUnavailable _open raised
        return self._conn

    def _open(self, now: float) -> psycopg.Connection[tuple[Any, ...]]:
        """A new connection with the session's timeouts set; ``now``: when the attempt began."""
        try:
            conn = psycopg.connect(self._conninfo, password=self._password, autocommit=True)
        except psycopg.Error as exc:
            self._failed_at, self._error = now, first_line(exc)
            raise StoreUnavailable(f"PostgreSQL unreachable: {self._error}") from None
        try:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS:d}")
            conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS:d}")
        except psycopg.Error as exc:
            conn.close()
            self._failed_at, self._error = now, first_line(exc)
            raise StoreUnavailable(f"PostgreSQL unusable: {self._error}") from None
        self._failed_at = None
        return conn

    @contextmanager
    def guarded(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """The connection; an error that broke it becomes ``StoreUnavailable``, others pass."""
        conn = self.connection()
        try:
            yield conn
        except psycopg.Error as exc:
            if not (conn.broken or conn.closed):
                raise  # a statement's own error (a timeout, a constraint): the link is fine
            self.close()
            raise StoreUnavailable(f"lost the PostgreSQL connection: {first_line(exc)}") from exc

    @contextmanager
    def transaction(self, *, synced: bool = True) -> Iterator[PgDb]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.guarded() as conn, conn.transaction():
            if not synced:
                # Committed without waiting for the WAL flush: what a server crash may lose is
                # an outcome, which only means a notice is sent again (as on SQLite).
                conn.execute("SET LOCAL synchronous_commit = off")
            yield PgDb(conn)

    def close(self) -> None:
        """Close the connection (and one still being made); the next call opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.add_done_callback(_close_made)


def _close_made(made: Future[psycopg.Connection[tuple[Any, ...]]]) -> None:
    """Close a background connection nobody waits for any more."""
    if not made.cancelled() and made.exception() is None:
        made.result().close()


NUL_STAND_IN = "\ufffd"  # what a NUL in a text becomes: Unicode's "could not be represented"


def storable(value: Any) -> Any:
    """``value`` as PostgreSQL's text accepts it: NUL, which it refuses, as U+FFFD.

    A probe's reason quotes what a server sent and a notice what a customer source holds:
    one NUL must not make every write of a tick fail. SQLite keeps NUL as it is.
    """
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", NUL_STAND_IN)
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


class PgDb:
    """``Db`` on a psycopg connection (inside the caller's transaction, if any)."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.conn = conn

    def execute(self, statement: Sql, params: Sequence[Any] = ()) -> Rows:
        """Run one statement; its rows are fetched already (a client-side cursor)."""
        # Parameters always given, even none: psycopg then reads the %% that sql() wrote.
        return self.conn.execute(statement.postgresql, [storable(p) for p in params])

    def executemany(self, statement: Sql, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row of parameters, pipelined."""
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(statement.postgresql, [[storable(p) for p in r] for r in rows])


class GuardedReads:
    """``Db`` for reads outside a transaction: each statement on the link, guarded."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def execute(self, statement: Sql, params: Sequence[Any] = ()) -> Rows:
        """Run one statement in its own implicit transaction."""
        with self.link.guarded() as conn:
            return PgDb(conn).execute(statement, params)

    def executemany(self, statement: Sql, rows: Sequence[Sequence[Any]]) -> None:
        """Not for reads: writes go through ``Link.transaction``."""
        raise TypeError("writes go through Link.transaction")
