"""What both SQL backends do the same way: every Store method, written once against ``Db``.

A backend says how to read (``_read``) and how to open a write transaction (``_write``);
the statements, their order inside each transaction and the row mapping are shared, so the
contract suite exercises one implementation on two databases.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import fields
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.notice import Notice, NoticeKind
from monitor.domain.availability import Tally
from monitor.domain.detector import Transition
from monitor.domain.incidents import Incident, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.probes.base import ProbeResult
from monitor.store import records
from monitor.store import results as aggregates
from monitor.store.base import OutboxItem, Store
from monitor.store.dialect import Db, sql

NOTICE_COLUMNS = tuple(f.name for f in fields(Notice))
_ITEM = f"{', '.join(NOTICE_COLUMNS)}, attempts, next_attempt_at"
# A notice another instance claimed is not due to anyone else until its lease ends; on a
# store only one daemon uses, nothing is ever claimed and these conditions always hold.
_UNCLAIMED = "(claimed_until IS NULL OR claimed_until <= ?)"
# ON CONFLICT (key) DO NOTHING rather than INSERT OR IGNORE: it is PostgreSQL syntax too, and
# it only ignores a duplicate key, whereas OR IGNORE would also silently drop a row that
# breaks NOT NULL, committing half a batch.
_ENQUEUE = sql(
    f"INSERT INTO outbox ({', '.join(NOTICE_COLUMNS)}, status, attempts, next_attempt_at) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(NOTICE_COLUMNS))}, 'pending', 0, ?) "
    "ON CONFLICT (key) DO NOTHING"
)
_DUE = sql(
    f"SELECT {_ITEM} FROM outbox "  # noqa: S608
    f"WHERE status = 'pending' AND next_attempt_at <= ? AND {_UNCLAIMED} "
    "ORDER BY next_attempt_at, key LIMIT ?"
)
# One statement picks and claims, so two instances never both take a notice: PostgreSQL
# skips rows another transaction is claiming; SQLite's single writer needs no such thing.
_CLAIM = sql(
    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE key IN ("  # noqa: S608
    "SELECT key FROM outbox "
    f"WHERE status = 'pending' AND next_attempt_at <= ? AND {_UNCLAIMED} "
    "ORDER BY next_attempt_at, key LIMIT ? {skip_locked}) "
    f"RETURNING {_ITEM}"
)
_NEXT_AT = sql(
    "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until "
    "ELSE next_attempt_at END) FROM outbox WHERE status = 'pending'"
)
_PENDING = sql("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
_LOG_DELIVERY = sql("INSERT INTO deliveries (key, at, outcome, detail) VALUES (?, ?, ?, ?)")
_DELIVERIES = sql("SELECT at, outcome, detail FROM deliveries WHERE key = ? ORDER BY id")
_TRANSITION = sql(
    "INSERT INTO transitions (check_id, old_status, new_status, at, reason, detail, "
    "first_failure_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SEEN_UP = sql(
    "SELECT check_id FROM result_days WHERE ok > 0 UNION "
    "SELECT check_id FROM transitions WHERE new_status IN ('up', 'degraded')"
)
_OPEN = sql(f"{records.INCIDENT_SELECT} WHERE status <> 'resolved' ORDER BY opened_at, id")
_RESOLVED = sql(f"{records.INCIDENT_SELECT} WHERE resolved_at >= ? ORDER BY resolved_at DESC, id")
_INCIDENT = sql(f"{records.INCIDENT_SELECT} WHERE id = ?")
_SUPPRESS = sql(
    "INSERT INTO suppressions (address, reason, at) VALUES (?, ?, ?) "
    "ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, at = excluded.at"
)
_SUPPRESSIONS = sql("SELECT address, reason, at FROM suppressions ORDER BY at DESC, address")
_LIFT = sql("DELETE FROM suppressions WHERE address = ?")
# An outcome ends the claim: a retry is anyone's again once due.
_MARKS = {
    "sent": sql(
        "UPDATE outbox SET attempts = attempts + 1, status = 'sent', sent_at = ?, "
        "last_error = NULL, claimed_by = NULL, claimed_until = NULL WHERE key = ?"
    ),
    "retry": sql(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, "
        "claimed_by = NULL, claimed_until = NULL WHERE key = ?"
    ),
    "failed": sql(
        "UPDATE outbox SET attempts = attempts + 1, status = 'failed', last_error = ?, "
        "claimed_by = NULL, claimed_until = NULL WHERE key = ?"
    ),
}


class SqlStore(Store):
    """The Store on a SQL database; subclasses connect, migrate and open transactions."""

    zone: ZoneInfo  # the daemon's: result_days holds its local calendar days

    @abstractmethod
    def _read(self) -> Db:
        """The connection for statements outside a write transaction."""

    @abstractmethod
    def _write(self, *, synced: bool = True) -> AbstractContextManager[Db]:
        """One write transaction; ``synced=False`` may skip waiting for the disk."""

    def write_results(self, results: Sequence[ProbeResult], excused: Collection[int] = ()) -> None:
        """Append probe results and add them to their minute and day aggregates, at once."""
        with self._write() as db:
            aggregates.write_results(db, results, excused, self.zone)

    def day_tallies(self, first_day: date) -> list[Tally]:
        """Per-check tallies of each local day from ``first_day`` on, by day then check."""
        return aggregates.day_tallies(self._read(), first_day)

    def minute_tallies(self, since: float) -> list[Tally]:
        """Per-check tallies of each minute from the one holding ``since``, by minute then check."""
        return aggregates.minute_tallies(self._read(), since)

    def last_result_at(self) -> float | None:
        """When the latest result was taken, or None before any; survives raw pruning."""
        return aggregates.last_result_at(self._read())

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
                _TRANSITION,
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
                [(*(getattr(n, c) for c in NOTICE_COLUMNS), n.created_at) for n in notices],
            )

    def seen_up(self) -> set[str]:
        """Checks that have answered at least once: an answer in history, or a move to up."""
        return {row[0] for row in self._read().execute(_SEEN_UP).fetchall()}

    def open_incidents(self) -> list[Incident]:
        """Incidents not yet resolved, oldest first."""
        return [records.incident(row) for row in self._read().execute(_OPEN).fetchall()]

    def resolved_since(self, since: float) -> list[Incident]:
        """Incidents resolved at or after ``since``, newest first."""
        rows = self._read().execute(_RESOLVED, (since,)).fetchall()
        return [records.incident(row) for row in rows]

    def timeline(self, incident_id: str) -> list[IncidentUpdate]:
        """An incident's customer-facing entries, oldest first."""
        return records.timeline(self._read(), incident_id)

    def save_window(self, window: Window) -> None:
        """Keep an operator's window, or an operator's change to a configured one."""
        with self._write() as db:
            records.write_window(db, window)

    def windows(self) -> list[Window]:
        """Windows operators added or changed, by start."""
        return records.windows(self._read())

    def window_progress(self) -> dict[str, WindowProgress]:
        """What customers were told of each window, by window id."""
        return records.progress(self._read())

    def get_incident(self, incident_id: str) -> Incident | None:
        """The incident with this id, if any."""
        row = self._read().execute(_INCIDENT, (incident_id,)).fetchone()
        return None if row is None else records.incident(row)

    def due_notices(self, now: float, limit: int) -> list[OutboxItem]:
        """Pending notices due at ``now``, longest-waiting first, at most ``limit``."""
        return [_item(row) for row in self._read().execute(_DUE, (now, now, limit)).fetchall()]

    def claim_due(self, now: float, limit: int, owner: str, lease_s: float) -> list[OutboxItem]:
        """Claim for ``owner`` until ``now + lease_s`` what ``due_notices`` would return."""
        with self._write() as db:
            rows = db.execute(_CLAIM, (owner, now + lease_s, now, now, limit)).fetchall()
        # RETURNING gives rows in no promised order.
        return sorted(map(_item, rows), key=lambda i: (i.next_attempt_at, i.notice.key))

    def next_attempt_at(self) -> float | None:
        """When the earliest pending notice becomes due (or its claim ends), None if none."""
        row = self._read().execute(_NEXT_AT).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_sent(self, key: str, at: float, detail: str = "") -> None:
        """Record a successful delivery."""
        self._mark(key, at, "sent", detail, (at,))

    def mark_retry(self, key: str, at: float, next_attempt_at: float, error: str) -> None:
        """Record a transient failure and when to try again."""
        self._mark(key, at, "retry", error, (next_attempt_at, error))

    def mark_failed(self, key: str, at: float, error: str) -> None:
        """Record a permanent failure: the notice will not be tried again."""
        self._mark(key, at, "failed", error, (error,))

    def _mark(
        self, key: str, at: float, outcome: str, detail: str, params: tuple[Any, ...]
    ) -> None:
        # An outcome lost to a power cut only means the notice is sent again, with the same
        # Message-ID: that is allowed, unlike losing a notice, so no sync to disk each time.
        with self._write(synced=False) as db:
            if db.execute(_MARKS[outcome], (*params, key)).rowcount != 1:
                raise KeyError(f"no outbox row with key {key!r}")
            db.execute(_LOG_DELIVERY, (key, at, outcome, detail))

    def pending_count(self) -> int:
        """How many notices wait in the outbox."""
        return int(self._read().execute(_PENDING).fetchone()[0])

    def suppress(self, address: str, reason: str, at: float) -> None:
        """Never email this address again (compared case-insensitively)."""
        with self._write() as db:
            db.execute(_SUPPRESS, (fold(address), reason, at))

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are suppressed, spelled as given."""
        by_folded: dict[str, list[str]] = {}
        for address in addresses:
            by_folded.setdefault(fold(address), []).append(address)
        found: set[str] = set()
        for address in self._suppressed_among(list(by_folded)):
            found.update(by_folded[address])
        return found

    @abstractmethod
    def _suppressed_among(self, folded: list[str]) -> Iterable[str]:
        """Which of these folded addresses are suppressed (dialects bind lists differently)."""

    def suppressions(self) -> list[tuple[str, str, float]]:
        """Every suppressed address as (address, reason, since), newest first."""
        rows = self._read().execute(_SUPPRESSIONS).fetchall()
        return [(str(address), str(reason), float(at)) for address, reason, at in rows]

    def lift(self, address: str) -> bool:
        """Email this address again; False when it was not suppressed."""
        with self._write() as db:
            return db.execute(_LIFT, (fold(address),)).rowcount > 0

    def deliveries(self, key: str) -> list[tuple[float, str, str]]:
        """The attempts log of one notice as (at, outcome, detail), oldest first."""
        rows = self._read().execute(_DELIVERIES, (key,)).fetchall()
        return [(float(at), str(outcome), str(detail)) for at, outcome, detail in rows]


def fold(address: str) -> str:
    """An address as suppressions store it: trimmed, lower case."""
    return address.strip().lower()


def _item(row: Sequence[Any]) -> OutboxItem:
    values = dict(zip(NOTICE_COLUMNS, row[:-2], strict=True))
    values["kind"] = NoticeKind(values["kind"])
    return OutboxItem(Notice(**values), int(row[-2]), float(row[-1]))
