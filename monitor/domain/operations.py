"""What operators can do to a running daemon: the contract between the API and the daemon."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from monitor.core.words import Words
from monitor.domain.incidents import Incident, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress


class OperatorAction(StrEnum):
    """An operator's message on an incident; each goes to the incident's customers."""

    IDENTIFY = "identify"  # the cause is known: status becomes identified
    UPDATE = "update"  # news without a status change
    RESOLVE = "resolve"  # resolved by hand (a still-failing service is then left quiet)
    POSTMORTEM = "postmortem"  # after resolution: what happened, what changes


@dataclass(frozen=True, slots=True)
class Suppression:
    """An address that gets no more email: its owner unsubscribed, or it bounced."""

    address: str
    reason: str  # "unsubscribed" or "hard_bounce"
    since: float
    customers: tuple[str, ...]  # ids of the configured customers with this address


class OperationError(Exception):
    """An operator request the daemon refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Operations(Protocol):
    """The daemon as the operator API sees it; every method runs on the event loop."""

    def list_incidents(self, *, include_resolved: bool) -> list[Incident]:
        """Open incidents, newest first; with resolved ones of the last 14 days if asked."""
        ...

    def incident(self, incident_id: str) -> Incident:
        """One incident; OperationError(404) when unknown."""
        ...

    def timeline(self, incident_id: str) -> list[IncidentUpdate]:
        """The incident's customer-facing entries, oldest first; OperationError(404)."""
        ...

    def act(
        self,
        incident_id: str,
        action: OperatorAction,
        message: Words,
        review: bool = False,
        force: bool = False,
        page_only: bool = False,
    ) -> Incident:
        """Apply an operator action and queue its notices; 404 unknown, 409 not allowed now.

        ``review`` (resolve only): the resolution promises a review of the incident.
        ``force`` (resolve only): close it although its services still fail (else a 409).
        ``page_only`` (update only): on the status page and feed, emailed to no one.
        """
        ...

    def open_incident(
        self, services: tuple[str, ...], message: Words, since: float | None = None
    ) -> Incident:
        """Open an incident no probe found; its customers are told at once.

        OperationError(400) for unknown services, 409 when one is already in an open incident.
        """
        ...

    def windows(self) -> list[tuple[Window, WindowProgress]]:
        """Known maintenance windows (configured and added), by start."""
        ...

    def add_window(self, window: Window) -> Window:
        """Add a window; OperationError(400) for unknown services or end <= start, 409 dup id.

        The id of a cancelled or ended window re-plans it under ``<id>-2`` (then -3, …).
        """
        ...

    def extend_window(self, window_id: str, end: float) -> Window:
        """Move a window's end; one "extended until" notice; 404 unknown, 409 ended."""
        ...

    def cancel_window(self, window_id: str) -> Window:
        """Cancel a window; customers told only if it was announced; 404, 409 ended."""
        ...

    def suppressions(self) -> list[Suppression]:
        """Addresses that get no email (unsubscribed or bounced), newest first."""
        ...

    def lift(self, address: str) -> Suppression:
        """Email ``address`` again; OperationError(404) when it was not suppressed."""
        ...
