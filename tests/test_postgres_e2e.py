"""The whole path on PostgreSQL: a real target fails, real SMTP receives the customers' emails.

The same daemon as tests/test_end_to_end.py, with ``daemon.database`` naming this test's
database on the session's real server.
"""

from __future__ import annotations

import psycopg

from monitor.daemon import Daemon
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import DB_NAME
from tests.conftest import ConfigFactory
from tests.operator_scene import TRACKING, Target, tracking_outage
from tests.smtp_server import FailingSmtpServer
from tests.test_end_to_end import fast_config, kinds
from tests.waiting import until


async def test_an_outage_reaches_the_subscribers_through_a_postgresql_store(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer, pg_dsn: str
) -> None:
    """Notices go out once each and resolve; incident and outbox live in PostgreSQL."""
    config = fast_config(
        make_config, target, smtp.port, update_every="1h", daemon_extra=f", database: '{pg_dsn}'"
    )
    daemon = Daemon(config)
    await daemon.start()
    try:
        assert isinstance(daemon.store, PostgresStore)
        incident_id = await tracking_outage(daemon, target, smtp)
        target.broken.discard("tracking")
        await until(lambda: len(kinds(smtp.messages, "resolved")) == 2)
        await until(lambda: daemon.store.pending_count() == 0)
    finally:
        await daemon.stop()
    assert sorted(r for m in kinds(smtp.messages, "first") for r in m.rcpt_tos) == sorted(TRACKING)
    ids = [m.message["Message-ID"] for m in smtp.messages]
    assert len(ids) == len(set(ids)) == 4, "each notice delivered exactly once"
    with psycopg.connect(pg_dsn) as conn:
        outbox = conn.execute(
            "SELECT kind, address, status FROM outbox WHERE incident_id = %s "
            "ORDER BY kind, address",
            (incident_id,),
        ).fetchall()
        (status,) = conn.execute("SELECT status FROM incidents WHERE id = %s", (incident_id,))
        aggregated = conn.execute("SELECT SUM(total) FROM result_days").fetchone()
    assert outbox == [
        (kind, address, "sent") for kind in ("first", "resolved") for address in sorted(TRACKING)
    ]
    assert status == ("resolved",)
    assert aggregated is not None and aggregated[0] > 0  # probe results were written there too
    assert not (config.daemon.state_dir / DB_NAME).exists()  # and no SQLite beside them
