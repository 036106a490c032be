"""A daemon whose PostgreSQL goes away and comes back: it keeps running, and catches up.

The server is this module's own (the session's serves the other tests), stopped and
started under a running daemon.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
import structlog

from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from tests.conftest import ConfigFactory
from tests.operator_scene import Target
from tests.postgres_server import PostgresServer, running_postgres
from tests.smtp_server import FailingSmtpServer
from tests.test_end_to_end import fast_config
from tests.waiting import until


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server this module may stop and start."""
    with running_postgres() as server:
        yield server


async def test_a_daemon_outlives_its_database_going_away_and_writes_what_it_kept(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer, own_server: PostgresServer
) -> None:
    """While PostgreSQL is down: one line per kind of failure, health degraded, results kept."""
    extra = f", database: '{own_server.dsn}'"
    daemon = Daemon(fast_config(make_config, target, smtp.port, daemon_extra=extra))
    with structlog.testing.capture_logs() as logs:
        await daemon.start()
        try:
            await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
            own_server.stop()
            stopped_at = time.time()
            await until(lambda: "results" in daemon.engine.write_failures.failing)
            await until(lambda: daemon.engine.write_failures.failing["results"] >= 3)
            assert daemon.health()["store"] == "unreachable"
            assert daemon.status_line().endswith("0 notices pending")
            own_server.start()
            started_at = time.time()
            # The link retries every 5 s: the kept results are written on the next try.
            await until(lambda: not daemon.engine.write_failures.failing, timeout_s=20)
            assert daemon.health()["outbox_pending"] == 0
        finally:
            await daemon.stop()
    with psycopg.connect(own_server.dsn) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM results WHERE at BETWEEN %s AND %s", (stopped_at, started_at)
        ).fetchone()
    assert row is not None and row[0] > 0, "results taken during the outage were lost"
    events = [e["event"] for e in logs]
    assert "tick_failed" not in events and "dispatcher_iteration_failed" not in events
    failed = [e.get("what") for e in logs if e["event"] == "store_write_failed"]
    assert sorted(failed) == sorted(set(failed)), "a failure was logged more than once"
    assert "results" in failed
