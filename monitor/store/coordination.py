"""Instances sharing one PostgreSQL: their leases, their verdicts and the decider's lock.

Times here are the database's clock (``clock_timestamp()``), never an instance's: two hosts
whose clocks disagree still agree on who renewed when. The decider is whoever holds a
session-level advisory lock on a connection of its own. PostgreSQL lets it go the moment that
session ends (a process killed, a host gone once TCP gives up), without waiting out a lease,
and a restarted server holds no lock at all. A decider's commits are fenced: each checks,
inside its own transaction, that its lock session still holds the lock (``fence``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.cluster.membership import Lease
from monitor.cluster.quorum import LocationVerdict, Seen
from monitor.probes.base import Reason
from monitor.store.base import StoreUnavailable
from monitor.store.dialect import Db, sql

if TYPE_CHECKING:  # psycopg is imported only where a database is configured
    from monitor.store.pgconnect import Link

# pg_try_advisory_lock(int4, int4): "fore" and 1, the decider. Shown in pg_locks as
# classid / objid with objsubid 2 (the two-key form).
LOCK_KEYS = (int.from_bytes(b"fore", "big"), 1)
# The database's clock, in UNIX seconds, spelled out in each statement below.

_RENEW = sql(
    "INSERT INTO instances (instance_id, location, started_at, renewed_at, canary_ok) "
    "VALUES (?, ?, ?, EXTRACT(EPOCH FROM clock_timestamp()), ?) "
    "ON CONFLICT (instance_id) DO UPDATE SET location = excluded.location, "
    "started_at = excluded.started_at, renewed_at = excluded.renewed_at, "
    "canary_ok = excluded.canary_ok"
)
_LEASES = sql(
    "SELECT instance_id, location, renewed_at, started_at, canary_ok, "
    "EXTRACT(EPOCH FROM clock_timestamp()) FROM instances"
)
_LEAVE = sql("DELETE FROM instances WHERE instance_id = ?")
_FORGET = sql("DELETE FROM instances WHERE renewed_at < EXTRACT(EPOCH FROM clock_timestamp()) - ?")
_PUBLISH = sql(
    "INSERT INTO verdicts (check_id, location, instance_id, seen, since, first_failure_at, "
    "reason, detail, flapping, seen_up, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, EXTRACT(EPOCH FROM clock_timestamp())) "
    "ON CONFLICT (check_id, location) DO UPDATE SET instance_id = excluded.instance_id, "
    "seen = excluded.seen, since = excluded.since, "
    "first_failure_at = excluded.first_failure_at, reason = excluded.reason, "
    "detail = excluded.detail, flapping = excluded.flapping, seen_up = excluded.seen_up, "
    "updated_at = excluded.updated_at"
)
_VERDICTS = sql(
    "SELECT check_id, location, instance_id, seen, since, first_failure_at, reason, detail, "
    "flapping, seen_up, updated_at, EXTRACT(EPOCH FROM clock_timestamp()) "
    "FROM verdicts WHERE updated_at >= ?"
)
_CLOCK = sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
# A verdict withdrawn: the check left this instance (or this instance restarted), so what its
# row said is no longer anyone's opinion; the row stays, saying "not known", until reused.
_WITHDRAW = sql(
    "UPDATE verdicts SET seen = 'unknown', since = NULL, first_failure_at = NULL, "
    "reason = NULL, detail = '', flapping = FALSE, "
    "updated_at = EXTRACT(EPOCH FROM clock_timestamp()) WHERE instance_id = ?"
)
_WITHDRAW_ONE = sql(
    "UPDATE verdicts SET seen = 'unknown', since = NULL, first_failure_at = NULL, "
    "reason = NULL, detail = '', flapping = FALSE, "
    "updated_at = EXTRACT(EPOCH FROM clock_timestamp()) WHERE instance_id = ? AND check_id = ?"
)
_TRY_LOCK = sql("SELECT pg_try_advisory_lock(?, ?), pg_backend_pid()")
_HOLDING = sql(
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = ? AND objid = ? "
    "AND objsubid = 2 AND pid = ? AND granted"
)
# A silent member's lock session ended by the others: a decider frozen or cut off keeps its
# session (and the lock) for as long as TCP does, hours without keepalives on the server.
_DEPOSE = sql(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = ? AND pid <> pg_backend_pid()"
)
_SECRET_PUT = sql("INSERT INTO shared_secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
_SECRET_GET = sql("SELECT value FROM shared_secrets WHERE name = ?")
FORGET_AFTER_S = 7 * 86400.0  # a lease row not renewed for a week: an instance retired


class NotLeading(StoreUnavailable):
    """A decider's commit found its lock gone: another instance may be deciding now."""


@dataclass(frozen=True, slots=True)
class Report:
    """One location's verdict on one check, as stored, with what the quorum needs besides."""

    check_id: str
    instance_id: str
    verdict: LocationVerdict
    flapping: bool = False
    seen_up: bool = False
    updated_at: float = 0.0  # database time of the write


class Coordination:
    """One instance's view of the cluster: its lease, the verdicts, the decider's lock."""

    def __init__(self, link: Link, lock_link: Link, me: Lease) -> None:
        self._link = link
        self._lock_link = lock_link  # a session of its own: its end releases the lock
        self.me = me
        self._lock_pid: int | None = None  # the lock session's backend, while we hold it
        self.lock_lost = False  # the lock's session could not be used when last asked

    @property
    def leading(self) -> bool:
        """Whether this instance held the decider's lock when last asked."""
        return self._lock_pid is not None

    def renew(self, canary_ok: bool) -> tuple[float, list[Lease]]:
        """Renew our lease; the database's time and every lease row, ours included."""
        me = self.me
        with self._link.transaction() as db:
            db.execute(_RENEW, (me.instance_id, me.location, me.started_at, canary_ok))
            db.execute(_FORGET, (FORGET_AFTER_S,))
            rows = db.execute(_LEASES).fetchall()
        now = float(rows[0][5])  # our own row is there: we just wrote it
        leases = [Lease(r[0], r[1], float(r[2]), float(r[3]), bool(r[4])) for r in rows]
        return now, leases

    def leave(self) -> None:
        """Give our lease and the lock back: the others take our checks over at once."""
        try:
            with self._link.transaction() as db:
                db.execute(_LEAVE, (self.me.instance_id,))
        finally:
            self._lock_link.close()
            self._lock_pid = None

    def publish(self, reports: Sequence[Report]) -> None:
        """Store our verdicts (one row per check and location), in one transaction."""
        if not reports:
            return
        rows = [
            (
                r.check_id,
                r.verdict.location,
                r.instance_id,
                r.verdict.seen.value,
                r.verdict.since,
                r.verdict.first_failure_at,
                r.verdict.reason.value if r.verdict.reason else None,
                r.verdict.detail,
                r.flapping,
                r.seen_up,
            )
            for r in reports
        ]
        with self._link.transaction() as db:
            db.executemany(_PUBLISH, rows)

    def withdraw(self, check_ids: Sequence[str] | None = None) -> None:
        """Mark our verdicts on ``check_ids`` (None: on every check) as no longer held."""
        with self._link.transaction() as db:
            if check_ids is None:
                db.execute(_WITHDRAW, (self.me.instance_id,))
            else:
                rows = [(self.me.instance_id, c) for c in sorted(check_ids)]
                db.executemany(_WITHDRAW_ONE, rows)

    def reports(self, since: float = 0.0) -> tuple[float, list[Report]]:
        """The database's time and the verdicts written at or after ``since`` (its time)."""
        with self._link.transaction() as db:
            rows = db.execute(_VERDICTS, (since,)).fetchall()
            now = rows[0][11] if rows else db.execute(_CLOCK).fetchall()[0][0]
        return float(now), [_report(r) for r in rows]

    def lead(self) -> bool:
        """Take the decider's lock if free, or check we still hold it; whether we lead."""
        try:
            with self._lock_link.guarded() as conn:
                if self._lock_pid is not None:
                    conn.execute("SELECT 1")
                    return True
                row = conn.execute(_TRY_LOCK.postgresql, LOCK_KEYS).fetchone()
        except StoreUnavailable:
            self._lock_pid = None  # the session is gone, and the lock with it
            self.lock_lost = True
            return False
        self.lock_lost = False
        if row is not None and row[0]:
            self._lock_pid = int(row[1])
        return self.leading

    def depose(self, instance_id: str) -> int:
        """End the lock session of a member gone silent; how many sessions were ended.

        The lock then goes to whoever asks next, within a round; the silent member, if it
        wakes, finds its commits refused (``fence``) and its session gone.
        """
        with self._link.transaction() as db:
            rows = db.execute(_DEPOSE, (lock_session_name(instance_id),)).fetchall()
        return sum(1 for row in rows if row[0])

    def fence(self, db: Db) -> None:
        """Inside a transaction: raise ``NotLeading`` unless our lock session holds the lock."""
        pid = self._lock_pid
        if pid is None or not db.execute(_HOLDING, (*LOCK_KEYS, pid)).fetchall():
            self._lock_pid = None
            raise NotLeading("this instance no longer holds the decider's lock")

    def shared_secret(self, name: str, candidate: str) -> str:
        """The secret every instance uses under ``name``: ``candidate`` if none was set yet."""
        with self._link.transaction() as db:
            db.execute(_SECRET_PUT, (name, candidate))
            return str(db.execute(_SECRET_GET, (name,)).fetchall()[0][0])

    def close(self) -> None:
        """Release both connections (the lock goes with its session)."""
        self._lock_link.close()
        self._link.close()
        self._lock_pid = None


def lock_session_name(instance_id: str) -> str:
    """The ``application_name`` of an instance's lock session (at most 63 bytes kept)."""
    return f"forewarn-lock {instance_id}"[:63]


def _report(row: Sequence[object]) -> Report:
    reason = row[6]
    verdict = LocationVerdict(
        location=str(row[1]),
        seen=Seen(str(row[3])),
        since=_float(row[4]),
        first_failure_at=_float(row[5]),
        reason=Reason(str(reason)) if reason else None,
        detail=str(row[7]),
    )
    return Report(
        str(row[0]), str(row[2]), verdict, bool(row[8]), bool(row[9]), float(str(row[10]))
    )


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))
