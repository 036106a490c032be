"""Maintenance windows: announce ahead, notify at start and end, suppress incidents inside."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


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
