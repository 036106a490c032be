"""Which Store a daemon opens: SQLite in its state folder, or the PostgreSQL it is given."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.cluster.membership import Lease
from monitor.store.base import Store
from monitor.store.coordination import Coordination, lock_session_name
from monitor.store.sqlite import SqliteStore

INSTALL = "pip install 'forewarn[postgresql]'"


class DriverMissing(Exception):
    """``daemon.database`` is set but psycopg (or the libpq it needs) cannot be imported."""


def open_store(
    state_dir: Path, zone: ZoneInfo, database: str | None = None, password: str | None = None
) -> Store:
    """The SQLite store in ``state_dir``, or the PostgreSQL one when ``database`` is set.

    Raises ``StoreUnavailable`` when that PostgreSQL cannot be reached, ``DriverMissing``
    when psycopg is not installed.
    """
    if database is None:
        return SqliteStore.open(state_dir, zone)
    try:
        # Imported only here: a SQLite daemon runs without psycopg installed.
        from monitor.store.postgres import PostgresStore
    except ImportError as exc:
        raise DriverMissing(
            f"daemon.database needs the PostgreSQL driver ({exc}): {INSTALL}"
        ) from None
    return PostgresStore.open(database, zone, password=password, background=True)


def open_coordination(database: str, password: str | None, me: Lease) -> Coordination:
    """Leases, verdicts and the decider's lock on ``database``, for the instance ``me``."""
    from monitor.store.pgconnect import Link  # psycopg: present, since the store opened

    # Two sessions: the lock's must never be closed by a failed statement of the other.
    links = (
        Link(database, password, background=True),
        Link(database, password, background=True, name=lock_session_name(me.instance_id)),
    )
    for link in links:
        link.connect_now()
    return Coordination(*links, me)


def instance_id(state_dir: Path) -> str:
    """This instance's name in a cluster: host and state folder, stable across restarts."""
    folder = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname().split('.')[0][:40]}-{folder}"
