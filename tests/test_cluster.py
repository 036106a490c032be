"""Three real forewarn processes on one PostgreSQL: quorum, one email per customer, failover."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from yarl import URL

from tests.cluster_scene import Cluster, needs_namespaces, running_cluster
from tests.operator_scene import OPS_MAILBOX, TRACKING, Target, kinds, serving_target, text_of, to
from tests.postgres_server import PostgresServer, running_postgres
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

THREE = {"a": "paris", "b": "lyon", "c": "lille"}
START_S = 60.0  # generous: three interpreters importing on two busy cores; only a hang fails


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own (some tests stop and restart it)."""
    needs_namespaces()
    with running_postgres() as server:
        yield server


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """The tracking, labels and canary endpoints every instance probes."""
    async with serving_target() as serving:
        yield serving


def port_of(target: Target) -> int:
    """The port the target listens on (the instances reach it by name)."""
    port = URL(target.url).port
    assert port is not None
    return port


async def settled(cluster: Cluster, members: int) -> None:
    """Wait until every instance sees ``members`` live members and tracking up."""

    def ready() -> bool:
        try:
            bodies = [i.get("/healthz") for i in cluster.alive()]
            status = [i.get("/api/v1/status") for i in cluster.alive()]
        except OSError:
            return False
        seen = all(b.get("cluster", {}).get("members") == members for b in bodies)
        up = all(
            all(s["state"] == "operational" for s in doc["services"]) for doc in status
        )
        return seen and up and sum(b["cluster"]["decider"] for b in bodies) == 1

    await until(ready, timeout_s=START_S)


async def test_an_outage_seen_from_everywhere_is_one_email_per_customer(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """Three instances, two locations per check, tracking down: each customer gets one email."""
    with running_cluster(tmp_path, postgres.dsn, smtp.port, port_of(target), THREE) as cluster:
        try:
            await settled(cluster, members=3)
            target.broken.add("tracking")
            await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=30)
            await holds(lambda: len(kinds(smtp, "first")) == 2, for_s=3 * 1.0)
            assert to(kinds(smtp, "first")) == sorted(TRACKING)
            down = [m for m in kinds(smtp, "ops") if "DOWN" in str(m.message["Subject"])]
            assert [r for m in down for r in m.rcpt_tos] == [OPS_MAILBOX]
            assert "seen from" in text_of(down[0])
        except BaseException:
            print(cluster.logs())
            raise
