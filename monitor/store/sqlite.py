"""The embedded Store: one SQLite file in WAL mode, versioned migrations, short transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.notice import Notice, NoticeKind
from monitor.core.private import private_dir, private_file
from monitor.domain.availability import Tally
from monitor.domain.detector import Transition
from monitor.domain.incidents import Incident, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.probes.base import ProbeResult
from monitor.store import records
from monitor.store import results as aggregates
from monitor.store.base import OutboxItem, Store
from monitor.store.migrations import DATA_STEPS, MIGRATIONS

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


_NOTICE_COLUMNS = tuple(f.name for f in fields(Notice))
# ON CONFLICT (key) DO NOTHING rather than INSERT OR IGNORE: it is PostgreSQL syntax too, and
# it only ignores a duplicate key, whereas OR IGNORE would also silently drop a row that
# breaks NOT NULL, committing half a batch.
_ENQUEUE = (
    f"INSERT INTO outbox ({', '.join(_NOTICE_COLUMNS)}, status, attempts, next_attempt_at) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_NOTICE_COLUMNS))}, 'pending', 0, ?) "
    "ON CONFLICT (key) DO NOTHING"
)
_DUE = (
    f"SELECT {', '.join(_NOTICE_COLUMNS)}, attempts, next_attempt_at FROM outbox "  # noqa: S608
    "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, key LIMIT ?"
)


class SqliteStore(Store):
    """Store on one SQLite connection, used from the event-loop thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path, zone: ZoneInfo = UTC) -> None:
        self._conn = conn
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

    @contextmanager
    def _write(self, *, synced: bool = True) -> Iterator[sqlite3.Connection]:
        if synced:
            with _immediate(self._conn):
                yield self._conn
            return
        # Committed to the WAL file without waiting for the disk: safe from a crash of the
        # process (kill -9), not from a power cut, which can only lose the last few of these.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with _immediate(self._conn):
                yield self._conn
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")

    def write_results(self, results: Sequence[ProbeResult], excused: Collection[int] = ()) -> None:
        """Append probe results and add them to their minute and day aggregates, at once."""
        with self._write() as db:
            aggregates.write_results(db, results, excused, self.zone)

    def day_tallies(self, first_day: date) -> list[Tally]:
        """Per-check tallies of each local day from ``first_day`` on, by day then check."""
        return aggregates.day_tallies(self._conn, first_day)

    def minute_tallies(self, since: float) -> list[Tally]:
        """Per-check tallies of each minute from the one holding ``since``, by minute then check."""
        return aggregates.minute_tallies(self._conn, since)

    def last_result_at(self) -> float | None:
        """When the latest result was taken, or None before any; survives raw pruning."""
        return aggregates.last_result_at(self._conn)

    def prune(
        self, before: float, limit: int, *, minutes_before: float = 0.0, days_before: float = 0.0
    ) -> int:
        """Delete at most ``limit`` old rows in one short transaction; how many went."""
        with self._write() as db:
            return aggregates.prune(db, before, limit, minutes_before, days_before, self.zone)

    def commit(
        self,
        *,
        transitions: Sequence[Transition] = (),
        incidents: Sequence[Incident] = (),
        notices: Sequence[Notice] = (),
        updates: Sequence[IncidentUpdate] = (),
        progress: Sequence[WindowProgress] = (),
    ) -> None:
        """Record transitions, incidents, their timeline, window progress and notices at once."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO transitions (check_id, old_status, new_status, at, reason, detail, "
                "first_failure_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                # StrEnum values bind as their text.
                [
                    (t.check_id, t.old, t.new, t.at, t.reason, t.detail, t.first_failure_at)
                    for t in transitions
                ],
            )
            records.write_incidents(db, incidents)
            records.write_updates(db, updates)
            records.write_progress(db, progress)
            db.executemany(
                _ENQUEUE,
                [(*(getattr(n, c) for c in _NOTICE_COLUMNS), n.created_at) for n in notices],
            )

    def seen_up(self) -> set[str]:
        """Checks that have answered at least once: an answer in history, or a move to up."""
        rows = self._conn.execute(
            "SELECT check_id FROM result_days WHERE ok > 0 UNION "
            "SELECT check_id FROM transitions WHERE new_status IN ('up', 'degraded')"
        ).fetchall()
        return {row[0] for row in rows}

    def open_incidents(self) -> list[Incident]:
        """Incidents not yet resolved, oldest first."""
        rows = self._conn.execute(
            f"{records.INCIDENT_SELECT} WHERE status <> 'resolved' ORDER BY opened_at, id"
        ).fetchall()
        return [records.incident(row) for row in rows]

    def resolved_since(self, since: float) -> list[Incident]:
        """Incidents resolved at or after ``since``, newest first."""
        rows = self._conn.execute(
            f"{records.INCIDENT_SELECT} WHERE resolved_at >= ? ORDER BY resolved_at DESC, id",
            (since,),
        ).fetchall()
        return [records.incident(row) for row in rows]

    def timeline(self, incident_id: str) -> list[IncidentUpdate]:
        """An incident's customer-facing entries, oldest first."""
        return records.timeline(self._conn, incident_id)

    def save_window(self, window: Window) -> None:
        """Keep an operator's window, or an operator's change to a configured one."""
        with self._write() as db:
            records.write_window(db, window)

    def windows(self) -> list[Window]:
        """Windows operators added or changed, by start."""
        return records.windows(self._conn)

    def window_progress(self) -> dict[str, WindowProgress]:
        """What customers were told of each window, by window id."""
        return records.progress(self._conn)

    def get_incident(self, incident_id: str) -> Incident | None:
        """The incident with this id, if any."""
        row = self._conn.execute(
            f"{records.INCIDENT_SELECT} WHERE id = ?", (incident_id,)
        ).fetchone()
        return None if row is None else records.incident(row)

    def due_notices(self, now: float, limit: int) -> list[OutboxItem]:
        """Pending notices due at ``now``, longest-waiting first, at most ``limit``."""
        rows = self._conn.execute(_DUE, (now, limit)).fetchall()
        return [OutboxItem(_notice(row[:-2]), row[-2], row[-1]) for row in rows]

    def next_attempt_at(self) -> float | None:
        """When the earliest pending notice becomes due, or None when none is pending."""
        row = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_sent(self, key: str, at: float, detail: str = "") -> None:
        """Record a successful delivery."""
        self._mark(
            key, at, "sent", detail, "status = 'sent', sent_at = ?, last_error = NULL", (at,)
        )

    def mark_retry(self, key: str, at: float, next_attempt_at: float, error: str) -> None:
        """Record a transient failure and when to try again."""
        self._mark(
            key, at, "retry", error, "next_attempt_at = ?, last_error = ?", (next_attempt_at, error)
        )

    def mark_failed(self, key: str, at: float, error: str) -> None:
        """Record a permanent failure: the notice will not be tried again."""
        self._mark(key, at, "failed", error, "status = 'failed', last_error = ?", (error,))

    def _mark(
        self,
        key: str,
        at: float,
        outcome: str,
        detail: str,
        assignments: str,
        params: tuple[Any, ...],
    ) -> None:
        # An outcome lost to a power cut only means the notice is sent again, with the same
        # Message-ID: that is allowed, unlike losing a notice, so no sync to disk each time.
        with self._write(synced=False) as db:
            updated = db.execute(
                f"UPDATE outbox SET attempts = attempts + 1, {assignments} "  # noqa: S608
                "WHERE key = ?",
                (*params, key),
            ).rowcount
            if updated != 1:
                raise KeyError(f"no outbox row with key {key!r}")
            db.execute(
                "INSERT INTO deliveries (key, at, outcome, detail) VALUES (?, ?, ?, ?)",
                (key, at, outcome, detail),
            )

    def pending_count(self) -> int:
        """How many notices wait in the outbox."""
        row = self._conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        return int(row[0])

    def suppress(self, address: str, reason: str, at: float) -> None:
        """Never email this address again (compared case-insensitively)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO suppressions (address, reason, at) VALUES (?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, at = excluded.at",
                (_fold(address), reason, at),
            )

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are suppressed, spelled as given."""
        by_folded: dict[str, list[str]] = {}
        for address in addresses:
            by_folded.setdefault(_fold(address), []).append(address)
        folded = list(by_folded)
        found: set[str] = set()
        for start in range(0, len(folded), _IN_CHUNK):
            chunk = folded[start : start + _IN_CHUNK]
            rows = self._conn.execute(
                "SELECT address FROM suppressions "  # noqa: S608
                f"WHERE address IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for (address,) in rows:
                found.update(by_folded[address])
        return found

    def suppressions(self) -> list[tuple[str, str, float]]:
        """Every suppressed address as (address, reason, since), newest first."""
        rows = self._conn.execute(
            "SELECT address, reason, at FROM suppressions ORDER BY at DESC, address"
        ).fetchall()
        return [(str(address), str(reason), float(at)) for address, reason, at in rows]

    def lift(self, address: str) -> bool:
        """Email this address again; False when it was not suppressed."""
        with self._write() as db:
            gone = db.execute("DELETE FROM suppressions WHERE address = ?", (_fold(address),))
            return gone.rowcount > 0

    def deliveries(self, key: str) -> list[tuple[float, str, str]]:
        """The attempts log of one notice as (at, outcome, detail), oldest first."""
        rows = self._conn.execute(
            "SELECT at, outcome, detail FROM deliveries WHERE key = ? ORDER BY id", (key,)
        ).fetchall()
        return [(float(at), str(outcome), str(detail)) for at, outcome, detail in rows]

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
                step(conn, zone)
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


def _fold(address: str) -> str:
    return address.strip().lower()


def _notice(row: Sequence[Any]) -> Notice:
    values = dict(zip(_NOTICE_COLUMNS, row, strict=True))
    values["kind"] = NoticeKind(values["kind"])
    return Notice(**values)
