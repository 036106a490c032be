"""Three real forewarn processes on one PostgreSQL: quorum, one email per customer, failover."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from yarl import URL

from monitor.cli.smtpsink import ReceivedMessage
from monitor.cluster.membership import Lease
from monitor.cluster.placement import assign
from monitor.store.opening import instance_id
from tests.cluster_scene import LEASE_PERIOD_S, Cluster, needs_namespaces, running_cluster
from tests.operator_scene import OPS_MAILBOX, TRACKING, Target, kinds, serving_target, text_of, to
from tests.postgres_server import PostgresServer, running_postgres
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

THREE = {"a": "paris", "b": "lyon", "c": "lille"}
OUTAGE_S = 60.0  # how long PostgreSQL is away: a restart, a failover, as the issue sets it
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
        up = all(all(s["state"] == "operational" for s in doc["services"]) for doc in status)
        return seen and up and sum(b["cluster"]["decider"] for b in bodies) == 1

    await until(ready, timeout_s=START_S)


async def test_an_outage_seen_from_everywhere_is_one_email_per_customer(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """Three instances, two locations per check, tracking down: each customer gets one email."""
    with running_cluster(tmp_path, postgres.dsn, smtp.port, port_of(target), THREE) as cluster:
        await settled(cluster, members=3)
        target.broken.add("tracking")
        await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=30)
        await holds(lambda: len(kinds(smtp, "first")) == 2, for_s=3 * 1.0)
        assert to(kinds(smtp, "first")) == sorted(TRACKING)
        down = [m for m in kinds(smtp, "ops") if "DOWN" in str(m.message["Subject"])]
        assert [r for m in down for r in m.rcpt_tos] == [OPS_MAILBOX]
        assert "seen from" in text_of(down[0])


def decider(cluster: Cluster) -> str:
    """The name of the instance that decides now."""
    names = [i.name for i in cluster.alive() if i.get("/healthz")["cluster"]["decider"]]
    assert len(names) == 1, names
    return names[0]


def probers(cluster: Cluster, check_id: str) -> set[str]:
    """The instances that probe ``check_id``, worked out as every instance does."""
    alive = cluster.alive()
    leases = [Lease(instance_id(i.folder / "state"), THREE[i.name], 0.0, 0.0) for i in alive]
    chosen = assign([check_id], leases)[check_id]
    return {i.name for i in alive if instance_id(i.folder / "state") in chosen}


def sent_once(messages: list[ReceivedMessage]) -> bool:
    """Whether no notice (one Message-ID) was delivered twice."""
    ids = [str(m.message["Message-ID"]) for m in messages]
    return len(ids) == len(set(ids))


async def test_one_broken_network_opens_no_incident_and_ops_hear_which_location(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """An instance that reaches no target (its canary neither): no incident, ops told where."""
    with running_cluster(
        tmp_path, postgres.dsn, smtp.port, port_of(target), THREE, broken=frozenset({"c"})
    ) as cluster:
        await settled(cluster, members=3)
        subject = "[forewarn] location lille is unhealthy"
        await until(lambda: any(m.message["Subject"] == subject for m in smtp.messages), 30)
        await holds(lambda: all(m.message["X-Forewarn-Kind"] == "ops" for m in smtp.messages),
                    for_s=3 * LEASE_PERIOD_S)  # fmt: skip
        assert all(i.get("/api/v1/incidents")["incidents"] == [] for i in cluster.alive())
        told = [m for m in smtp.messages if m.message["Subject"] == subject]
        assert len(told) == 1 and "canary" in text_of(told[0])


async def test_a_killed_decider_still_sends_the_update_and_the_resolution_once(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """kill -9 of the decider after the first notice: updates and resolution, once each."""
    with running_cluster(
        tmp_path, postgres.dsn, smtp.port, port_of(target), THREE, update_every="4s"
    ) as cluster:
        await settled(cluster, members=3)
        target.broken.add("tracking")
        await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=30)
        told_at = time.time()
        cluster[decider(cluster)].kill()
        await until(lambda: len(kinds(smtp, "update")) >= 2, timeout_s=30)
        # Due 4 s after the first notice; a new decider and a sender within a lease or two.
        assert time.time() - told_at < 4 + 3 * LEASE_PERIOD_S + 2
        assert to(kinds(smtp, "update"))[:2] == sorted(TRACKING)
        target.broken.clear()
        await until(lambda: len(kinds(smtp, "resolved")) == 2, timeout_s=30)
        await holds(lambda: len(kinds(smtp, "resolved")) == 2, for_s=2 * LEASE_PERIOD_S)
        assert to(kinds(smtp, "resolved")) == sorted(TRACKING)
        assert len(kinds(smtp, "first")) == 2 and sent_once(smtp.messages)


async def test_a_killed_probers_checks_are_taken_over_and_an_outage_then_is_noticed(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """kill -9 of an instance probing tracking: the others take it over and catch an outage."""
    with running_cluster(tmp_path, postgres.dsn, smtp.port, port_of(target), THREE) as cluster:
        await settled(cluster, members=3)
        lead = decider(cluster)
        victim = sorted(probers(cluster, "tracking-ws") - {lead})[0]
        cluster[victim].kill()
        # Within two lease periods it is silent and the others hold every check again.
        await until(lambda: all(i.get("/healthz")["cluster"]["members"] == 2
                                for i in cluster.alive()), timeout_s=30)  # fmt: skip
        target.broken.add("tracking")
        await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=30)
        await holds(lambda: len(kinds(smtp, "first")) == 2, for_s=2 * LEASE_PERIOD_S)
        assert to(kinds(smtp, "first")) == sorted(TRACKING)
        silent = [m for m in kinds(smtp, "ops") if "stopped renewing" in str(m.message["Subject"])]
        assert len(silent) == 1 and sent_once(smtp.messages)


async def test_a_database_outage_during_an_outage_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """PostgreSQL stopped for 60 s mid-outage, then back: results kept, resolution sent once."""
    with running_cluster(tmp_path, postgres.dsn, smtp.port, port_of(target), THREE) as cluster:
        await settled(cluster, members=3)
        target.broken.add("tracking")
        await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=30)
        postgres.stop("fast")
        stopped_at = time.time()
        await until(lambda: all(i.get("/healthz")["status"] == "degraded"
                                for i in cluster.alive()), timeout_s=30)  # fmt: skip
        target.broken.clear()  # it recovers while nobody can decide
        await holds(lambda: not kinds(smtp, "resolved"), for_s=OUTAGE_S - 5)
        restarted_at = time.time()
        postgres.start()
        await until(lambda: len(kinds(smtp, "resolved")) == 2, timeout_s=60)
        await holds(lambda: len(kinds(smtp, "resolved")) == 2, for_s=2 * LEASE_PERIOD_S)
        assert len(kinds(smtp, "first")) == 2 and sent_once(smtp.messages)
        assert results_between(postgres.dsn, stopped_at + 5, restarted_at) > 0


def results_between(dsn: str, start: float, end: float) -> int:
    """How many probe results taken between ``start`` and ``end`` the database holds."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM results WHERE at BETWEEN %s AND %s", (start, end)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_frozen_decider_is_replaced_and_cannot_decide_when_it_wakes(
    tmp_path: Path, postgres: PostgresServer, smtp: FailingSmtpServer, target: Target
) -> None:
    """kill -STOP of the decider: another decides and tells customers; woken, it decides nothing."""
    with running_cluster(tmp_path, postgres.dsn, smtp.port, port_of(target), THREE) as cluster:
        await settled(cluster, members=3)
        frozen = cluster[decider(cluster)]
        assert frozen.process is not None
        frozen.process.send_signal(signal.SIGSTOP)  # its sessions stay open: a hung host
        others = [i for i in cluster.alive() if i is not frozen]
        await until(lambda: sum(i.get("/healthz")["cluster"]["decider"] for i in others) == 1,
                    timeout_s=30)  # fmt: skip
        target.broken.add("tracking")
        await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=30)
        frozen.process.send_signal(signal.SIGCONT)
        await until(lambda: frozen.get("/healthz")["cluster"]["decider"] is False, 30)
        await holds(lambda: len(kinds(smtp, "first")) == 2, for_s=2 * LEASE_PERIOD_S)
        assert to(kinds(smtp, "first")) == sorted(TRACKING) and sent_once(smtp.messages)
        assert sum(i.get("/healthz")["cluster"]["decider"] for i in cluster.alive()) == 1
