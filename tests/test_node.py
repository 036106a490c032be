"""Nodes of two or three simulated instances in one process, on one real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from monitor.cluster.membership import Lease
from monitor.config.load import load_config
from monitor.core.render import Renderer
from monitor.domain.detector import CheckStatus
from monitor.engine import Engine
from monitor.node import Node
from monitor.notices.planner import NoticePlanner
from monitor.probes.base import ProbeResult, Reason
from monitor.runtime.metrics import Metrics
from monitor.store.coordination import Coordination
from monitor.store.pgconnect import Link
from monitor.store.postgres import PostgresStore
from tests.waiting import until

T0 = 1795348800.0  # 2026-11-22 13:00 Europe/Paris: the engines' fixed clock
CHECKS = ("tracking-ws", "labels-ws", "billing-ws", "quotes-ws")

CONFIG = """\
daemon: {{state_dir: "{state}", timezone: Europe/Paris, database: "{dsn}",
         lease_period: {lease_period}, probe_from: {probe_from},
         canary: [{{id: uplink, type: tcp, host: 192.0.2.1, port: 53}}]}}
defaults: {{interval: 10s, timeout: 1s, retry_interval: 1s, failure_threshold: 2,
           success_threshold: 1}}
services:
  - {{id: tracking, name: Parcel tracking}}
  - {{id: labels, name: Shipping labels}}
  - {{id: billing, name: Billing}}
checks:
  - {{id: tracking-ws, service: tracking, type: tcp, host: 192.0.2.2, port: 443}}
  - {{id: labels-ws, service: labels, type: tcp, host: 192.0.2.3, port: 443}}
  - {{id: billing-ws, service: billing, type: tcp, host: 192.0.2.4, port: 443}}
  - {{id: quotes-ws, service: billing, type: tcp, host: 192.0.2.5, port: 443}}
notices:
  customer_delay: 0s
  ops: [{{type: webhook, url: "https://hooks.example.net/ops"}}]
"""


@dataclass
class Instance:
    """One simulated instance: its own store link, coordination, engine and node."""

    node: Node
    shares: list[frozenset[str]] = field(default_factory=list)  # what set_checks was given

    @property
    def engine(self) -> Engine:
        return self.node.engine

    def feed(self, check_id: str, ok: bool, times: int = 2) -> None:
        """``times`` results of ``check_id`` folded into this location's detectors."""
        reason = None if ok else Reason.CONNECT_TIMEOUT
        for _ in range(times):
            self.engine.observe(ProbeResult(check_id, T0, ok, reason=reason), T0)

    def view(self, service_id: str) -> CheckStatus:
        return self.engine.views[service_id].status

    def told(self, words: str) -> list[str]:
        """Subjects of the held ops notices that contain ``words``."""
        return [n.subject for n in self.engine.held if words in n.subject]


Start = Callable[..., Instance]


@pytest.fixture
def start(pg_dsn: str, tmp_path: Path) -> Iterator[Start]:
    """Start simulated instances (name, location) on the test's database; closed after."""
    made: list[Instance] = []

    def start(name: str, location: str, probe_from: int = 2, lease: str = "5s") -> Instance:
        path = tmp_path / f"{name}.yaml"
        text = CONFIG.format(
            state=tmp_path / name, dsn=pg_dsn, lease_period=lease, probe_from=probe_from
        )
        path.write_text(text, encoding="utf-8")
        config = load_config(path)
        store = PostgresStore.open(pg_dsn)
        engine = Engine(config, store, NoticePlanner(config, Renderer()), Metrics(), lambda: T0)
        engine.cluster = True
        # Named sessions, so that a test can cut exactly one of them.
        link, lock = (Link(f"{pg_dsn}?application_name={name}-{role}") for role in ("link", "lock"))
        coordination = Coordination(link, lock, Lease(name, location, 0.0, T0))
        shares: list[frozenset[str]] = []
        instance = Instance(Node(config, engine, coordination, shares.append, Metrics()), shares)
        made.append(instance)
        return instance

    yield start
    for instance in made:
        instance.node.coordination.close()
        instance.engine.store.close()


def rounds(*instances: Instance, passes: int = 2) -> None:
    """Every instance renews and places, ``passes`` times: the later ones see every lease."""
    for _ in range(passes):
        for instance in instances:
            instance.node.round(T0)


def ticks(*instances: Instance, passes: int = 2) -> None:
    """Every instance publishes and reads verdicts, ``passes`` times: all read all."""
    for _ in range(passes):
        for instance in instances:
            instance.node.tick(T0)


def all_up(*instances: Instance) -> None:
    """Every instance sees every check and its canary answer, and the cluster has read it."""
    for instance in instances:
        for check_id in (*CHECKS, "uplink"):
            instance.feed(check_id, ok=True)
    ticks(*instances)


def test_each_check_is_probed_from_probe_from_instances(start: Start) -> None:
    """With three instances and probe_from 2, each check is in exactly two instances' shares."""
    cluster = [start("a", "paris"), start("b", "lyon"), start("c", "lille")]
    rounds(*cluster)
    for check_id in CHECKS:
        assert sum(check_id in (i.node.mine or ()) for i in cluster) == 2
    assert all(i.node.assignment == cluster[0].node.assignment for i in cluster)
    assert all(i.shares[-1] == i.node.mine for i in cluster)


def test_a_check_is_down_only_once_a_majority_of_locations_confirm_it(start: Start) -> None:
    """One location of three failing leaves the service up everywhere; a second makes it down."""
    cluster = [start("a", "paris", 3), start("b", "lyon", 3), start("c", "lille", 3)]
    rounds(*cluster)
    (decider,) = [i for i in cluster if i.node.leading]
    all_up(*cluster)
    assert all(i.view("tracking") is CheckStatus.UP for i in cluster)
    cluster[0].feed("tracking-ws", ok=False)
    ticks(*cluster)
    assert cluster[0].engine.states["tracking-ws"].status is CheckStatus.DOWN
    assert all(i.view("tracking") is CheckStatus.UP for i in cluster)
    assert decider.node.verdicts["tracking-ws"].dissenting == ("paris",)
    cluster[1].feed("tracking-ws", ok=False)
    ticks(*cluster)
    assert all(i.view("tracking") is CheckStatus.DOWN for i in cluster)
    assert decider.node.verdicts["tracking-ws"].saw_failure == ("lyon", "paris")
    assert decider.view("labels") is CheckStatus.UP


def test_a_location_whose_canary_fails_is_left_out_of_the_count(start: Start) -> None:
    """Of two locations, one failing is not a majority until the other's canary fails."""
    a, b = start("a", "paris"), start("b", "lyon")
    rounds(a, b)
    assert a.node.leading
    all_up(a, b)
    a.feed("tracking-ws", ok=False)
    ticks(a, b)
    assert a.view("tracking") is CheckStatus.UP
    b.feed("uplink", ok=False, times=1)  # every canary of lyon failing: lyon is offline
    assert b.engine.offline_since is not None
    rounds(a, b)  # lyon's lease now says its canary fails
    ticks(a, b)
    assert a.node.verdicts["tracking-ws"].left_out == ("lyon",)
    assert a.view("tracking") is CheckStatus.DOWN
    assert a.view("labels") is CheckStatus.UP
    assert a.told("location lyon is unhealthy") == ["[forewarn] location lyon is unhealthy"]


async def test_the_decider_tells_ops_once_of_an_instance_gone_silent(start: Start) -> None:
    """An instance that stops renewing is one ops notice on the decider, however many rounds."""
    a, b = start("a", "paris", lease="500ms"), start("b", "lyon", lease="500ms")
    rounds(a, b)  # a took the lock first, and has seen b's lease
    assert a.node.leading and not b.node.leading

    def silent_told() -> bool:
        a.node.round(T0)  # real renewals: b's lease ages on the database's clock
        return bool(a.told("stopped renewing"))

    await until(silent_told, timeout_s=10)
    for _ in range(5):
        a.node.round(T0)
    assert a.told("stopped renewing") == [
        "[forewarn] instance b at lyon stopped renewing its lease"
    ]
    assert [m.instance_id for m in a.node.live] == ["a"]
    assert b.engine.held == []


def seen_in_database(dsn: str, check_id: str) -> str:
    """What the verdicts table holds of ``check_id`` (one location)."""
    with psycopg.connect(dsn) as conn:
        (row,) = conn.execute("SELECT seen FROM verdicts WHERE check_id = %s", (check_id,))
    return str(row[0])


def test_a_verdict_the_database_refused_is_published_once_it_is_back(
    start: Start, pg_dsn: str
) -> None:
    """A down verdict whose write failed (link cut) is written at the next tick that works."""
    a = start("a", "paris")
    rounds(a)
    all_up(a)
    assert seen_in_database(pg_dsn, "tracking-ws") == "up"
    a.feed("tracking-ws", ok=False)
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            ("a-link",),
        )
    a.node.tick(T0)  # the write fails on the cut session
    assert a.node.failures.failing == {"verdicts": 1}
    assert seen_in_database(pg_dsn, "tracking-ws") == "up"
    a.node.tick(T0)  # reconnected: nothing new happened, yet the refused verdict goes out
    assert a.node.failures.failing == {}
    assert seen_in_database(pg_dsn, "tracking-ws") == "down"
    assert a.view("tracking") is CheckStatus.DOWN
