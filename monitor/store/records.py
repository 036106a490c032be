"""Row mapping for incidents, their timeline and maintenance windows, in either SQL dialect."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import astuple, fields
from typing import Any

from monitor.core.words import Words
from monitor.domain.incidents import Incident, IncidentStatus, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.store.dialect import Db, sql

# Columns are named after the dataclass fields: a new field without its migration fails loudly.
INCIDENT_COLUMNS = tuple(f.name for f in fields(Incident))
_TUPLES = ("services", "announced")  # stored as comma-separated ids (ids never hold commas)
_WORDS = ("message", "postmortem")  # stored as Words.encode()
INCIDENT_SELECT = f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents"  # noqa: S608
_UPSERT_INCIDENT = sql(
    f"INSERT INTO incidents ({', '.join(INCIDENT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(INCIDENT_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in INCIDENT_COLUMNS[1:])
)
_PROGRESS_COLUMNS = tuple(f.name for f in fields(WindowProgress))
_UPSERT_PROGRESS = sql(
    f"INSERT INTO maintenance_progress ({', '.join(_PROGRESS_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_PROGRESS_COLUMNS))}) ON CONFLICT (window_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _PROGRESS_COLUMNS[1:])
)

_INSERT_UPDATE = sql(
    "INSERT INTO incident_updates (incident_id, at, status, kind, message) VALUES (?, ?, ?, ?, ?)"
)
_TIMELINE = sql(
    "SELECT incident_id, at, status, kind, message FROM incident_updates "
    "WHERE incident_id = ? ORDER BY id"
)
_UPSERT_WINDOW = sql(
    "INSERT INTO maintenance_windows (id, services, start_at, end_at, announce_before, "
    "summary, cancelled) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    "services = excluded.services, start_at = excluded.start_at, end_at = excluded.end_at, "
    "announce_before = excluded.announce_before, summary = excluded.summary, "
    "cancelled = excluded.cancelled"
)
_WINDOWS = sql(
    "SELECT id, services, start_at, end_at, announce_before, summary, cancelled "
    "FROM maintenance_windows ORDER BY start_at, id"
)
_PROGRESS = sql(f"SELECT {', '.join(_PROGRESS_COLUMNS)} FROM maintenance_progress")  # noqa: S608


def write_incidents(db: Db, incidents: Sequence[Incident]) -> None:
    """Insert or update each incident by id."""
    rows = [tuple(_column(i, c) for c in INCIDENT_COLUMNS) for i in incidents]
    db.executemany(_UPSERT_INCIDENT, rows)


def _column(incident: Incident, name: str) -> Any:
    value = getattr(incident, name)
    if name in _TUPLES:
        return ",".join(value)
    return value.encode() if name in _WORDS else value


def incident(row: Sequence[Any]) -> Incident:
    """An Incident from a row of INCIDENT_SELECT."""
    values = dict(zip(INCIDENT_COLUMNS, row, strict=True))
    values["status"] = IncidentStatus(values["status"])
    values["unstable"] = bool(values["unstable"])
    values["never_up"] = bool(values["never_up"])
    values["closed_failing"] = bool(values["closed_failing"])
    values["manual"] = bool(values["manual"])
    for name in _TUPLES:
        values[name] = tuple(s for s in values[name].split(",") if s)
    for name in _WORDS:
        values[name] = Words.decode(values[name])
    return Incident(**values)


def write_updates(db: Db, updates: Sequence[IncidentUpdate]) -> None:
    """Append timeline entries."""
    db.executemany(
        _INSERT_UPDATE,
        [(u.incident_id, u.at, u.status, u.kind, u.message.encode()) for u in updates],
    )


def timeline(conn: Db, incident_id: str) -> list[IncidentUpdate]:
    """An incident's timeline, oldest first."""
    rows = conn.execute(_TIMELINE, (incident_id,)).fetchall()
    return [IncidentUpdate(r[0], float(r[1]), r[2], r[3], Words.decode(r[4])) for r in rows]


def write_window(db: Db, window: Window) -> None:
    """Insert or replace an operator's window (or an operator's change to a configured one)."""
    db.execute(
        _UPSERT_WINDOW,
        (
            window.id,
            ",".join(window.services),
            window.start,
            window.end,
            window.announce_before,
            json.dumps(dict(window.summary), ensure_ascii=False),
            window.cancelled,
        ),
    )


def windows(conn: Db) -> list[Window]:
    """Every stored window, by start."""
    rows = conn.execute(_WINDOWS).fetchall()
    return [
        Window(r[0], tuple(r[1].split(",")), r[2], r[3], r[4], json.loads(r[5]), bool(r[6]))
        for r in rows
    ]


def write_progress(db: Db, progress: Sequence[WindowProgress]) -> None:
    """Insert or update what customers were told of each window."""
    db.executemany(_UPSERT_PROGRESS, [astuple(p) for p in progress])


def progress(conn: Db) -> dict[str, WindowProgress]:
    """What customers were told of every window, by window id."""
    rows = conn.execute(_PROGRESS).fetchall()
    return {r[0]: WindowProgress(*r) for r in rows}
