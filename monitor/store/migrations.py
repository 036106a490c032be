"""The schema scripts of both Store backends, from one list: SQLite counts the applied ones
in ``PRAGMA user_version``, PostgreSQL in the ``forewarn_schema`` table."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from monitor.store import results as history
from monitor.store.dialect import Db

# DDL is per dialect (AUTOINCREMENT becomes an identity column on PostgreSQL); the types
# are spelled so both accept them: DOUBLE PRECISION (REAL is float4 on PostgreSQL, too
# coarse for UNIX times) and BOOLEAN. Never edit a shipped entry: append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE results (
        check_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        ok BOOLEAN NOT NULL,
        degraded BOOLEAN NOT NULL,
        reason TEXT,
        duration_s DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX results_check_at ON results (check_id, at);
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        check_id TEXT NOT NULL,
        old_status TEXT NOT NULL,
        new_status TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        reason TEXT,
        detail TEXT NOT NULL,
        first_failure_at DOUBLE PRECISION
    );
    CREATE INDEX transitions_check_at ON transitions (check_id, at);
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        service_id TEXT NOT NULL,
        status TEXT NOT NULL,
        opened_at DOUBLE PRECISION NOT NULL,
        first_failure_at DOUBLE PRECISION NOT NULL,
        sequence INTEGER NOT NULL,
        customers_told_at DOUBLE PRECISION,
        next_update_at DOUBLE PRECISION,
        recovered_at DOUBLE PRECISION,
        resolved_at DOUBLE PRECISION,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX incidents_open ON incidents (opened_at) WHERE status <> 'resolved';
    CREATE TABLE outbox (
        key TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        address TEXT NOT NULL,
        language TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        last_error TEXT,
        sent_at DOUBLE PRECISION
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at, key) WHERE status = 'pending';
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL REFERENCES outbox (key),
        at DOUBLE PRECISION NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX deliveries_key ON deliveries (key, id);
    CREATE TABLE suppressions (
        address TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: issue 4, incident communication.
    """
    ALTER TABLE outbox ADD COLUMN unsubscribe_url TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN services TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN announced TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN check_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN unstable BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE incidents ADD COLUMN message TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN postmortem TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN maintenance_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX incidents_resolved ON incidents (resolved_at);
    CREATE TABLE incident_updates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX incident_updates_incident ON incident_updates (incident_id, id);
    CREATE TABLE maintenance_windows (
        id TEXT PRIMARY KEY,
        services TEXT NOT NULL,
        start_at DOUBLE PRECISION NOT NULL,
        end_at DOUBLE PRECISION NOT NULL,
        announce_before DOUBLE PRECISION NOT NULL,
        summary TEXT NOT NULL,
        cancelled BOOLEAN NOT NULL
    );
    CREATE TABLE maintenance_progress (
        window_id TEXT PRIMARY KEY,
        announced_at DOUBLE PRECISION,
        started_at DOUBLE PRECISION,
        told_end DOUBLE PRECISION,
        ended_at DOUBLE PRECISION,
        cancelled_at DOUBLE PRECISION
    );
    """,
    # 3: availability from aggregates, and raw results pruned by age. The by-minute, by-day
    # and by-last_at indexes keep pruning and the status page's reads off full scans.
    """
    CREATE TABLE result_minutes (
        check_id TEXT NOT NULL,
        minute BIGINT NOT NULL,
        total INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        excused INTEGER NOT NULL,
        PRIMARY KEY (check_id, minute)
    );
    CREATE INDEX result_minutes_minute ON result_minutes (minute);
    CREATE TABLE result_days (
        check_id TEXT NOT NULL,
        day TEXT NOT NULL,
        total INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        excused INTEGER NOT NULL,
        last_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (check_id, day)
    );
    CREATE INDEX result_days_day ON result_days (day);
    CREATE INDEX result_days_last_at ON result_days (last_at);
    CREATE INDEX results_at ON results (at);
    """,
    # 4: issues 15 and 16: an incident whose failing checks never answered tells ops, not
    # customers; one closed by hand while still failing is not called restored.
    """
    ALTER TABLE incidents ADD COLUMN never_up BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE incidents ADD COLUMN closed_failing BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX transitions_new_status ON transitions (new_status, check_id);
    """,
    # 5: issue 20: an incident opened by an operator (an outage no probe found) is resolved
    # by an operator only, whatever its services' checks say.
    """
    ALTER TABLE incidents ADD COLUMN manual BOOLEAN NOT NULL DEFAULT FALSE;
    """,
    # 6: issue 19: several instances drain one outbox. A notice is claimed by one instance
    # (claimed_by) until its lease ends (claimed_until, UNIX time); none is claimed on a
    # store only one daemon uses.
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_until DOUBLE PRECISION;
    """,
    # 7: issue 19: instances sharing a database. Each renews its lease row; each location's
    # verdict on each check it probes is one row, rolled up by the decider; secrets every
    # instance must share (the unsubscribe key) live here rather than in a state folder.
    """
    CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY,
        location TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        renewed_at DOUBLE PRECISION NOT NULL,
        canary_ok BOOLEAN NOT NULL
    );
    CREATE TABLE verdicts (
        check_id TEXT NOT NULL,
        location TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        seen TEXT NOT NULL,
        since DOUBLE PRECISION,
        first_failure_at DOUBLE PRECISION,
        reason TEXT,
        detail TEXT NOT NULL,
        flapping BOOLEAN NOT NULL,
        seen_up BOOLEAN NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (check_id, location)
    );
    CREATE INDEX verdicts_updated_at ON verdicts (updated_at);
    CREATE TABLE shared_secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]

# The auto-numbered keys are the only DDL the two dialects spell differently.
SERIAL_KEY = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
}


def scripts(dialect: str) -> list[str]:
    """The migrations as ``dialect`` (a key of SERIAL_KEY) reads them, oldest first."""
    return [script.replace(SERIAL_KEY["sqlite"], SERIAL_KEY[dialect]) for script in MIGRATIONS]


# Steps a script cannot express, run right after the script of their version and in the
# same transaction. Days are local to the daemon's timezone, which SQL does not know, so
# migration 3 aggregates the existing results in Python with the zone the store opens with.
DATA_STEPS: dict[int, Callable[[Db, ZoneInfo], None]] = {
    3: history.backfill,
}
