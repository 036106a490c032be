"""Maintenance windows: announce ahead, notify at start and end, suppress incidents inside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import ServiceView


@dataclass(frozen=True, slots=True)
class Window:
    """One planned interruption of some services, as configured or added by an operator."""

    id: str
    services: tuple[str, ...]
    start: float
    end: float
    announce_before: float = 0.0  # 0: no advance notice, customers hear at the start
    summary: Mapping[str, str] = field(default_factory=dict)  # language → customer-facing text
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class WindowProgress:
    """What customers have been told about one window so far; persisted across restarts."""

    window_id: str
    announced_at: float | None = None
    started_at: float | None = None
    told_end: float | None = None  # the end customers were last told of
    ended_at: float | None = None
    cancelled_at: float | None = None


class MaintenanceKind(StrEnum):
    """What happened to a window; each kind is one notice to its customers."""

    PLANNED = "planned"
    STARTED = "started"
    EXTENDED = "extended"
    ENDED = "ended"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class MaintenanceChange:
    """One step of a window, with its progress as it is after the step."""

    kind: MaintenanceKind
    window: Window
    progress: WindowProgress
    at: float


_KIND_ORDER = {kind: rank for rank, kind in enumerate(MaintenanceKind)}


def advance(
    windows: Sequence[Window], progress: Mapping[str, WindowProgress], now: float
) -> list[MaintenanceChange]:
    """The notices due at ``now`` for every window, by window start then kind."""
    changes: list[MaintenanceChange] = []
    for window in windows:
        told = progress.get(window.id, WindowProgress(window.id))
        changes.extend(_advance_one(window, told, now))
    return sorted(changes, key=lambda c: (c.window.start, _KIND_ORDER[c.kind], c.window.id))


def _advance_one(window: Window, told: WindowProgress, now: float) -> list[MaintenanceChange]:
    """The steps one window goes through at ``now``, in timeline order."""
    if told.ended_at is not None:
        return []
    heard = told.announced_at is not None or told.started_at is not None
    # A recorded cancellation is final even if the operator un-cancels: customers were told
    # it is off, so bringing it back takes a new window (and a new announcement).
    if window.cancelled or told.cancelled_at is not None:
        if told.cancelled_at is None and heard:
            cancelled = replace(told, cancelled_at=now)
            return [MaintenanceChange(MaintenanceKind.CANCELLED, window, cancelled, now)]
        return []
    steps: list[MaintenanceChange] = []
    if (
        window.announce_before > 0
        and window.start - window.announce_before <= now < window.start
        and told.announced_at is None
        and told.started_at is None
    ):
        told = replace(told, announced_at=now, told_end=window.end)
        steps.append(MaintenanceChange(MaintenanceKind.PLANNED, window, told, now))
    if window.start <= now < window.end and told.started_at is None:
        told = replace(told, started_at=now, told_end=window.end)
        steps.append(MaintenanceChange(MaintenanceKind.STARTED, window, told, now))
    # Only a later end is news. An earlier one is not announced (the ENDED notice says it) and
    # told_end keeps the later promise, so a re-extension up to that promise stays quiet too.
    # Once the new end has passed as well, the ENDED notice below is the only news worth sending.
    if heard and now < window.end and told.told_end is not None and window.end > told.told_end:
        told = replace(told, told_end=window.end)
        steps.append(MaintenanceChange(MaintenanceKind.EXTENDED, window, told, now))
    # A window that was never started (the daemon was down throughout) ends silently: "it is
    # over" means nothing to customers who never heard "it started".
    if now >= window.end and told.started_at is not None:
        told = replace(told, ended_at=now)
        steps.append(MaintenanceChange(MaintenanceKind.ENDED, window, told, now))
    return steps


def active(windows: Sequence[Window], now: float) -> dict[str, Window]:
    """Service id → the window in effect at ``now``; of overlapping ones, the one ending last."""
    current: dict[str, Window] = {}
    for window in windows:
        if window.cancelled or not window.start <= now < window.end:
            continue
        for service_id in window.services:
            held = current.get(service_id)
            # The id breaks ties on end so the answer does not depend on configuration order.
            if held is None or (window.end, window.id) > (held.end, held.id):
                current[service_id] = window
    return current


def _last_ended(windows: Sequence[Window], now: float) -> dict[str, Window]:
    """Service id → its non-cancelled window that ended most recently by ``now``."""
    last: dict[str, Window] = {}
    for window in windows:
        if window.cancelled or window.end > now:
            continue
        for service_id in window.services:
            held = last.get(service_id)
            if held is None or (window.end, window.id) > (held.end, held.id):
                last[service_id] = window
    return last


def mask(
    views: Mapping[str, ServiceView], windows: Sequence[Window], now: float
) -> dict[str, ServiceView]:
    """Views as the incident logic should see them: in maintenance, overrunning, or as is."""
    inside = active(windows, now)
    ended = _last_ended(windows, now)
    masked: dict[str, ServiceView] = {}
    for service_id, view in views.items():
        window = inside.get(service_id)
        if window is not None:
            # Flapping is expected while a service is being worked on: not worth a warning.
            masked[service_id] = replace(
                view, status=CheckStatus.MAINTENANCE, flapping=False, maintenance_id=window.id
            )
            continue
        window = ended.get(service_id)
        if (
            window is not None
            and view.status is CheckStatus.DOWN
            and view.first_failure_at is not None
            and view.first_failure_at < window.end
        ):
            # Customers were promised the service back at the end: the outage counts from there.
            masked[service_id] = replace(
                view, maintenance_id=window.id, first_failure_at=window.end
            )
            continue
        masked[service_id] = view
    return masked


def overridden(configured: Window, kept: Window) -> dict[str, Any]:
    """How an operator's version of a configured window differs from checks.yaml, and how to
    plan it again: the fields of a ``maintenance_config_overridden`` log line."""
    differs = [
        name
        for name in ("services", "start", "end", "announce_before", "summary", "cancelled")
        if getattr(configured, name) != getattr(kept, name)
    ]
    hint = (
        f"plan it again under a new id (checks.yaml, or forewarn maintenance add --id "
        f"{kept.id}, which becomes {kept.id}-2)"
        if kept.cancelled
        else "extend or cancel it with forewarn maintenance"
    )
    return {"window": kept.id, "differs": differs, "hint": hint}
