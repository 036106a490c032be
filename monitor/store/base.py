"""The persistence contract: results history, incidents and the transactional notice outbox."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import structlog

from monitor.core.notice import Notice
from monitor.domain.availability import Tally
from monitor.domain.detector import Transition
from monitor.domain.incidents import Incident, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.probes.base import ProbeResult

_log = structlog.get_logger("forewarn.store")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A notice waiting in the outbox, with its delivery bookkeeping."""

    notice: Notice
    attempts: int  # delivery attempts already made
    next_attempt_at: float  # UNIX time it becomes due


class StoreUnavailable(Exception):
    """The database cannot be reached now; the call did nothing and a later one may work."""


class Store(Protocol):
    """Everything the daemon persists; times are UNIX float seconds.

    Every write method is one transaction, on SQLite (monitor/store/sqlite.py) and on
    PostgreSQL (monitor/store/postgres.py) alike: both share their SQL (sqlbase.py).
    """

    def write_results(self, results: Sequence[ProbeResult], excused: Collection[int] = ()) -> None:
        """Append probe results and add them to their minute and day aggregates, at once.

        ``excused`` holds the positions in ``results`` of results taken inside a maintenance
        window: they count in ``total``, and when they failed in ``excused`` too, so that
        availability (ok / (total - excused)) ignores them.
        """
        ...

    def day_tallies(self, first_day: date) -> list[Tally]:
        """Per-check tallies of each local day from ``first_day`` on, by day then check.

        Days are calendar days in the timezone the store was opened with; buckets read
        ``2026-11-21``.
        """
        ...

    def minute_tallies(self, since: float) -> list[Tally]:
        """Per-check tallies of each minute from the one holding ``since``, by minute then check.

        Buckets are the minute's Unix start as text.
        """
        ...

    def last_result_at(self) -> float | None:
        """When the latest result was taken, or None before any; survives raw pruning."""
        ...

    def prune(
        self, before: float, limit: int, *, minutes_before: float = 0.0, days_before: float = 0.0
    ) -> int:
        """Delete at most ``limit`` old rows in one short transaction; how many went.

        Raw results go first, when taken before ``before``; then, within what ``limit``
        leaves, minute aggregates of minutes before the one holding ``minutes_before`` and
        day aggregates of local days before the one holding ``days_before`` (the defaults
        keep every aggregate). Fewer than ``limit`` means nothing more is due.
        """
        ...

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
        ...

    def seen_up(self) -> set[str]:
        """Checks that have answered at least once: an answer in history, or a move to up."""
        ...

    def open_incidents(self) -> list[Incident]:
        """Incidents not yet resolved, oldest first."""
        ...

    def get_incident(self, incident_id: str) -> Incident | None:
        """The incident with this id, if any."""
        ...

    def resolved_since(self, since: float) -> list[Incident]:
        """Incidents resolved at or after ``since``, newest first."""
        ...

    def timeline(self, incident_id: str) -> list[IncidentUpdate]:
        """An incident's customer-facing entries, oldest first."""
        ...

    def save_window(self, window: Window) -> None:
        """Keep an operator's window, or an operator's change to a configured one."""
        ...

    def windows(self) -> list[Window]:
        """Windows operators added or changed, by start."""
        ...

    def window_progress(self) -> dict[str, WindowProgress]:
        """What customers were told of each window, by window id."""
        ...

    def due_notices(self, now: float, limit: int) -> list[OutboxItem]:
        """Pending notices due at ``now`` and not claimed, oldest first, at most ``limit``."""
        ...

    def claim_due(self, now: float, limit: int, owner: str, lease_s: float) -> list[OutboxItem]:
        """Take what ``due_notices`` would return for ``owner`` alone, until ``now + lease_s``.

        In one transaction: instances sharing a database never claim the same notice, and a
        claimed one is due to nobody else until an outcome is marked or the lease ends.
        """
        ...

    def next_attempt_at(self) -> float | None:
        """When the earliest pending notice becomes due, or None when none is pending.

        A claimed notice counts from the end of its lease.
        """
        ...

    def mark_sent(self, key: str, at: float, detail: str = "") -> None:
        """Record a successful delivery."""
        ...

    def mark_retry(self, key: str, at: float, next_attempt_at: float, error: str) -> None:
        """Record a transient failure and when to try again."""
        ...

    def mark_failed(self, key: str, at: float, error: str) -> None:
        """Record a permanent failure: the notice will not be tried again."""
        ...

    def pending_count(self) -> int:
        """How many notices wait in the outbox."""
        ...

    def suppress(self, address: str, reason: str, at: float) -> None:
        """Never email this address again (compared case-insensitively)."""
        ...

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are suppressed, spelled as given."""
        ...

    def suppressions(self) -> list[tuple[str, str, float]]:
        """Every suppressed address as (address, reason, since), newest first."""
        ...

    def lift(self, address: str) -> bool:
        """Email this address again; False when it was not suppressed."""
        ...

    def deliveries(self, key: str) -> list[tuple[float, str, str]]:
        """The attempts log of one notice as (at, outcome, detail), oldest first."""
        ...

    def checkpoint(self) -> None:
        """Fold what the write-ahead log holds into the database and shrink the log.

        Never waits for a reader: what a reader still needs stays for the next call. A
        store without such a log does nothing.
        """
        ...

    def close(self) -> None:
        """Release the database."""
        ...


class WriteFailures:
    """Failed writes as episodes: one error line when a kind starts failing, one on recovery.

    A full or failing disk makes every write of a tick fail; logging each would flood the
    journal on that very disk. ``what`` names the kind of write (``results``, ``commit``…).
    """

    def __init__(self) -> None:
        self.failing: dict[str, int] = {}  # kind of write -> failures in the current episode

    def failed(self, what: str, error: Exception, **context: object) -> None:
        """Count a failure; the first of an episode is logged with its error."""
        count = self.failing.get(what, 0) + 1
        self.failing[what] = count
        if count == 1:
            _log.error("store_write_failed", what=what, error=str(error), **context)

    def succeeded(self, what: str, **context: object) -> None:
        """A write of this kind worked: end its episode, if one was going on."""
        count = self.failing.pop(what, 0)
        if count:
            _log.info("store_write_recovered", what=what, failures=count, **context)
