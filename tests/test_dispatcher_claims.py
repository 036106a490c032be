"""Two dispatchers sharing one PostgreSQL outbox, each claiming under its own name."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

from monitor.runtime.metrics import Metrics
from monitor.store.postgres import PostgresStore
from notifiers.base import Notifier
from tests.builders import addressed_notice
from tests.dispatching import counted, dispatching, email_notifier, outcomes
from tests.smtp_server import FailingSmtpServer
from tests.waiting import until

NOTICES = 20


async def test_two_claiming_dispatchers_deliver_each_notice_exactly_once(
    pg_dsn: str, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """20 notices, two instances' dispatchers on one database: each sent once, none twice."""
    smtp.slow_s = 0.005  # a send takes a while: both dispatchers have claims in flight at once
    stores = [PostgresStore.open(pg_dsn), PostgresStore.open(pg_dsn)]
    metrics = [Metrics(), Metrics()]
    notices = [addressed_notice(f"c{i}") for i in range(NOTICES)]
    stores[0].commit(notices=notices)
    try:
        async with AsyncExitStack() as running:
            for name, store, counters in zip(("a", "b"), stores, metrics, strict=True):
                notifier: dict[str, Notifier] = {"email": email_notifier(smtp.port, tmp_path)}
                await running.enter_async_context(
                    dispatching(store, notifier, counters, claim_as=name, concurrency=2, batch=2)
                )
            await smtp.wait_for(NOTICES, 10)
            await until(lambda: stores[0].pending_count() == 0)
            await until(lambda: all(outcomes(stores[1], n.key) for n in notices))
    finally:
        for store in stores:
            store.close()
    ids = Counter(m.message["Message-ID"] for m in smtp.messages)
    assert len(ids) == NOTICES
    assert max(ids.values()) == 1, "a notice was sent twice"
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(
        n.address for n in notices
    )
    sent = [counted(m, "sent") for m in metrics]
    assert sum(sent) == NOTICES
    assert all(count > 0 for count in sent), f"one dispatcher sent everything: {sent}"
