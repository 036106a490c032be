"""Coordination on a real PostgreSQL: leases, the lock and its fence, verdicts, secrets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from monitor.cluster.membership import Lease
from monitor.cluster.quorum import LocationVerdict, Seen
from monitor.probes.base import Reason
from monitor.store.coordination import LOCK_KEYS, Coordination, NotLeading, Report
from monitor.store.opening import open_coordination
from monitor.store.pgconnect import Link
from monitor.store.postgres import PostgresStore
from tests.builders import make_notice
from tests.waiting import until


@pytest.fixture
def instances(pg_dsn: str) -> Iterator[dict[str, Coordination]]:
    """Instances a (in paris, started at 100) and b (in lyon, at 200) on one database."""
    made = {
        "a": open_coordination(pg_dsn, None, Lease("a", "paris", 0.0, 100.0)),
        "b": open_coordination(pg_dsn, None, Lease("b", "lyon", 0.0, 200.0)),
    }
    yield made
    for coordination in made.values():
        coordination.close()


def db_clock(dsn: str) -> float:
    """The database's clock now, in UNIX seconds."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
    assert row is not None
    return float(row[0])


def lock_holders(dsn: str) -> list[int]:
    """The backends holding the decider's advisory lock."""
    query = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s "
        "AND objsubid = 2 AND granted"
    )
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute(query, LOCK_KEYS).fetchall()]


def test_renew_returns_the_database_time_and_our_own_lease(
    pg_dsn: str, instances: dict[str, Coordination]
) -> None:
    """A renewal answers with the database's clock and the lease it just wrote, canary included."""
    before = db_clock(pg_dsn)
    now, leases = instances["a"].renew(canary_ok=False)
    after = db_clock(pg_dsn)
    assert before <= now <= after
    (lease,) = leases
    assert lease == Lease("a", "paris", lease.renewed_at, 100.0, canary_ok=False)
    assert before <= lease.renewed_at <= now


def test_another_instances_lease_is_seen_with_its_location_and_canary(
    instances: dict[str, Coordination],
) -> None:
    """Once b renewed, a's renewal lists both leases as each wrote them."""
    _, (b_lease,) = instances["b"].renew(canary_ok=False)
    now, leases = instances["a"].renew(canary_ok=True)
    by_id = {lease.instance_id: lease for lease in leases}
    assert sorted(by_id) == ["a", "b"]
    assert by_id["b"] == b_lease
    assert (by_id["a"].location, by_id["a"].canary_ok) == ("paris", True)
    assert by_id["b"].renewed_at <= by_id["a"].renewed_at <= now


async def test_leave_removes_our_lease_and_hands_the_lock_over(
    pg_dsn: str, instances: dict[str, Coordination]
) -> None:
    """After a leaves, b's renewal no longer lists it and b takes the lock at its next try."""
    a, b = instances["a"], instances["b"]
    a.renew(canary_ok=True)
    assert a.lead()
    assert not b.lead()
    a.leave()
    assert not a.leading
    _, leases = b.renew(canary_ok=True)
    assert [lease.instance_id for lease in leases] == ["b"]
    await until(b.lead, timeout_s=2)  # the server ends a's session just after it hung up
    assert len(lock_holders(pg_dsn)) == 1


async def test_only_one_instance_leads_until_its_lock_session_closes(
    pg_dsn: str, instances: dict[str, Coordination]
) -> None:
    """Two instances asking in turn: one leads, keeps leading; the other leads once it closed."""
    a, b = instances["a"], instances["b"]
    assert a.lead()
    for _ in range(3):
        assert not b.lead()
        assert a.lead()
    assert (a.leading, b.leading) == (True, False)
    assert len(lock_holders(pg_dsn)) == 1
    a.close()
    await until(b.lead, timeout_s=2)  # the server ends a's session just after it hung up
    assert b.leading


def test_a_terminated_lock_session_fences_the_deciders_writes_off(
    pg_dsn: str, instances: dict[str, Coordination]
) -> None:
    """Once its lock session is gone, the fence refuses and a fenced store write leaves nothing."""
    a = instances["a"]
    assert a.lead()
    store = PostgresStore.open(pg_dsn)
    try:
        with store.fenced(a.fence):
            store.commit(notices=[make_notice("while-leading")])
        assert store.pending_count() == 1  # the fence lets the decider's writes through
        (pid,) = lock_holders(pg_dsn)
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        link = Link(pg_dsn)
        with pytest.raises(NotLeading), link.transaction() as db:
            a.fence(db)
        link.close()
        assert not a.leading
        with pytest.raises(NotLeading), store.fenced(a.fence):
            store.commit(notices=[make_notice("after-the-lock")])
        assert store.pending_count() == 1
        assert [i.notice.key for i in store.due_notices(float("inf"), 10)] == ["while-leading"]
    finally:
        store.close()


DOWN_REPORT = Report(
    "tracking-ws",
    "a",
    LocationVerdict(
        location="paris",
        seen=Seen.DOWN,
        since=1_700_000_010.5,
        first_failure_at=1_700_000_000.25,
        reason=Reason.CONNECT_TIMEOUT,
        detail="no answer in 2 s",
    ),
    flapping=True,
    seen_up=True,
)
UP_REPORT = Report("labels-ws", "a", LocationVerdict(location="paris", seen=Seen.UP))


def test_published_reports_read_back_field_for_field(
    pg_dsn: str, instances: dict[str, Coordination]
) -> None:
    """Every field of a report comes back as written, unset ones as None, stamped by the db."""
    a, b = instances["a"], instances["b"]
    before = db_clock(pg_dsn)
    a.publish([DOWN_REPORT, UP_REPORT])
    now, read = b.reports()
    assert UP_REPORT.verdict.reason is None and UP_REPORT.verdict.since is None
    by_check = {r.check_id: r for r in read}
    assert len(read) == 2
    for written in (DOWN_REPORT, UP_REPORT):
        got = by_check[written.check_id]
        assert before <= got.updated_at <= now
        assert got == replace(written, updated_at=got.updated_at)


def test_reports_since_a_time_are_those_written_at_or_after_it(
    instances: dict[str, Coordination],
) -> None:
    """reports(since) leaves out rows last written before ``since`` and keeps one written at it."""
    a = instances["a"]
    a.publish([UP_REPORT])
    _, (first,) = a.reports()
    a.publish([DOWN_REPORT])
    _, both = a.reports(first.updated_at)
    assert sorted(r.check_id for r in both) == ["labels-ws", "tracking-ws"]
    second = next(r for r in both if r.check_id == "tracking-ws")
    assert second.updated_at > first.updated_at
    _, (only,) = a.reports(second.updated_at)
    assert only.check_id == "tracking-ws"
    a.publish([replace(UP_REPORT, verdict=replace(UP_REPORT.verdict, seen=Seen.DOWN))])
    _, rewritten = a.reports(second.updated_at + 1e-6)
    assert [(r.check_id, r.verdict.seen) for r in rewritten] == [("labels-ws", Seen.DOWN)]


def test_the_first_shared_secret_set_wins_for_every_later_candidate(
    instances: dict[str, Coordination],
) -> None:
    """Whoever asks first sets the secret; every later candidate gets that value back."""
    a, b = instances["a"], instances["b"]
    assert a.shared_secret("unsubscribe", "first-key") == "first-key"
    assert b.shared_secret("unsubscribe", "second-key") == "first-key"
    assert a.shared_secret("unsubscribe", "third-key") == "first-key"
    assert b.shared_secret("other", "its-own") == "its-own"
