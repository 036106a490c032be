"""The operator's desk: the Operations contract implemented on a running Engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from monitor.core.words import Words
from monitor.domain.actions import ActionRefused, act, open_by_hand
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import ChangeKind, Incident, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.domain.operations import OperationError, Operations, OperatorAction, Suppression
from monitor.engine import Engine

log = structlog.get_logger("forewarn.desk")

RECENT_S = 14 * 86400.0  # resolved incidents listed and shown on the status page


class Desk(Operations):
    """Operator actions go through the same path as the detector's: one commit each."""

    def __init__(self, engine: Engine, on_commit: Callable[[], None]) -> None:
        self.engine = engine
        self.on_commit = on_commit  # wakes the dispatcher: operator words go out at once

    def list_incidents(self, *, include_resolved: bool) -> list[Incident]:
        """Open incidents, newest first; with resolved ones of the last 14 days if asked."""
        found = sorted(self.engine.open.values(), key=lambda i: i.opened_at, reverse=True)
        if include_resolved:
            found += self.engine.store.resolved_since(self.engine.clock() - RECENT_S)
        return found

    def incident(self, incident_id: str) -> Incident:
        """One incident; OperationError(404) when unknown."""
        incident = self.engine.incident(incident_id)
        if incident is None:
            raise OperationError(404, f"no incident {incident_id!r}")
        return incident

    def timeline(self, incident_id: str) -> list[IncidentUpdate]:
        """The incident's entries, oldest first."""
        self.incident(incident_id)
        return self.engine.store.timeline(incident_id)

    def act(
        self,
        incident_id: str,
        action: OperatorAction,
        message: Words,
        review: bool = False,
        force: bool = False,
        page_only: bool = False,
    ) -> Incident:
        """Apply an operator action and queue its notices to the incident's customers."""
        engine, now = self.engine, self.engine.clock()
        incident = self.incident(incident_id)
        failing = tuple(
            s
            for s in incident.covered
            if s in engine.views
            and (engine.views[s].status is CheckStatus.DOWN or engine.views[s].flapping)
        )
        try:
            timing = engine.timing(incident.service_id)
            change = act(
                incident,
                action,
                message,
                now,
                timing,
                review,
                failing=failing,
                force=force,
                page_only=page_only,
            )
        except ActionRefused as exc:
            raise OperationError(409, str(exc)) from None
        if change.kind is ChangeKind.RESOLVED:
            # Still failing: stay quiet about it until it answers, or it would reopen at once.
            engine.hush(failing, change.incident.id)
        if engine.commit([change], [], now):
            self.on_commit()
        return change.incident

    def open_incident(
        self, services: tuple[str, ...], message: Words, since: float | None = None
    ) -> Incident:
        """Open an incident by hand; committed with its first notices like any change."""
        engine, now = self.engine, self.engine.clock()
        known = {s.id for s in engine.config.services}
        unknown = [s for s in services if s not in known]
        if unknown or not services:
            raise OperationError(400, f"unknown services: {', '.join(unknown) or '(none)'}")
        for service_id in services:
            covering = engine.covering(service_id)
            if covering is not None:
                raise OperationError(
                    409,
                    f"{service_id} is already in incident {covering.id}: "
                    "post an update on it instead",
                )
        try:
            changes = open_by_hand(services, message, now, engine.timing(services[0]), since)
        except ActionRefused as exc:
            raise OperationError(409, str(exc)) from None
        if engine.incident(changes[0].incident.id) is not None:
            raise OperationError(409, "an incident was opened for it this very millisecond")
        if engine.commit(changes, [], now):
            self.on_commit()
        return changes[-1].incident

    def windows(self) -> list[tuple[Window, WindowProgress]]:
        """Known maintenance windows (configured and added), by start."""
        progress = self.engine.progress
        return [
            (w, progress.get(w.id, WindowProgress(w.id)))
            for w in sorted(self.engine.windows, key=lambda w: (w.start, w.id))
        ]

    def add_window(self, window: Window) -> Window:
        """Add a window; its notices follow on the next tick."""
        known = {s.id for s in self.engine.config.services}
        unknown = [s for s in window.services if s not in known]
        if unknown or not window.services:
            raise OperationError(400, f"unknown services: {', '.join(unknown) or '(none)'}")
        if window.end <= window.start:
            raise OperationError(400, "end must be after start")
        taken = {w.id for w in self.engine.windows}
        if window.id in taken:
            old = next(w for w in self.engine.windows if w.id == window.id)
            progress = self.engine.progress.get(old.id, WindowProgress(old.id))
            if not (old.cancelled or progress.cancelled_at or progress.ended_at is not None):
                raise OperationError(409, f"a window {window.id!r} exists already")
            # Re-planning a cancelled (or ended) window: a new id, so that it is announced,
            # started and ended afresh, with notice keys of its own.
            n = 2
            while f"{window.id}-{n}" in taken:
                n += 1
            log.info("maintenance_replanned", window=f"{window.id}-{n}", replaces=window.id)
            window = replace(window, id=f"{window.id}-{n}")
        return self._save(window)

    def extend_window(self, window_id: str, end: float) -> Window:
        """Move a window's end; customers hear "extended until" once if it moved later."""
        window = self._open_window(window_id)
        if end <= window.start:
            raise OperationError(400, "end must be after start")
        return self._save(replace(window, end=end))

    def cancel_window(self, window_id: str) -> Window:
        """Cancel a window; its customers are told if they had heard of it."""
        return self._save(replace(self._open_window(window_id), cancelled=True))

    def suppressions(self) -> list[Suppression]:
        """Addresses that get no email (unsubscribed or bounced), newest first."""
        return [
            Suppression(address, reason, since, self._owners(address))
            for address, reason, since in self.engine.store.suppressions()
        ]

    def lift(self, address: str) -> Suppression:
        """Email ``address`` again; its customers get the notices planned from now on."""
        found = next((s for s in self.suppressions() if s.address == address.strip().lower()), None)
        if found is None or not self.engine.store.lift(address):
            raise OperationError(404, f"{address!r} is not suppressed")
        log.info("suppression_lifted", customers=list(found.customers), reason=found.reason)
        return found

    def unsubscribed(self, address: str, at: float) -> None:
        """A customer unsubscribed (already stored): log it by customer id, tell ops."""
        ids = list(self._owners(address))
        log.info("unsubscribed", customers=ids)
        try:  # only the news of it: a failure here must not fail the customer's click
            notices = self.engine.planner.ops.unsubscribed(address, at)
            if notices:
                self.engine.store.commit(notices=notices)
                self.on_commit()
        except Exception:
            log.exception("unsubscribe_ops_notice_failed", customers=ids)

    def _owners(self, address: str) -> tuple[str, ...]:
        return tuple(c.id for c in self.engine.config.customers if c.owns(address))

    def _open_window(self, window_id: str) -> Window:
        window = next((w for w in self.engine.windows if w.id == window_id), None)
        if window is None:
            raise OperationError(404, f"no maintenance window {window_id!r}")
        progress = self.engine.progress.get(window_id, WindowProgress(window_id))
        if window.cancelled or progress.ended_at is not None:
            raise OperationError(409, f"maintenance window {window_id!r} is over")
        return window

    def _save(self, window: Window) -> Window:
        self.engine.store.save_window(window)
        self.engine.put_window(window)
        if self.engine.advance(self.engine.clock()):  # a window starting now is told now
            self.on_commit()
        return window
