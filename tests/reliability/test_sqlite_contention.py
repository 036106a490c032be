"""SQLite under contention: operator API writes, the result writer and the dispatcher at once.

A real Daemon runs 40 checks every 100 ms against a real aiohttp target, opens and resolves
incidents and mails a real SMTP sink, while operators drive the real HTTP API with a bearer
token (maintenance windows added, extended and cancelled; incident updates posted) and an
outside reader (a backup, an operator's ``sqlite3``) queries the file from another thread on
its own connection. Nothing may fail with ``database is locked``, and the -wal file must stay
bounded: SQLite folds it in every ``WAL_AUTOCHECKPOINT_PAGES`` pages and, with
``journal_size_limit``, cuts it back when it restarts; the retention loop's periodic
checkpoint truncates it once a reader that pinned old pages lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from monitor.config.load import load_config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.probes.base import ProbeResult
from monitor.store.retention import retention_loop
from monitor.store.sqlite import (
    DB_NAME,
    WAL_AUTOCHECKPOINT_PAGES,
    WAL_SIZE_LIMIT_BYTES,
    SqliteStore,
)
from tests.reliability.target import Target
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

WRITE = "ops-write-token-0123456789abcdef"
SERVICES = ("s0", "s1", "s2", "s3")
CHECKS_PER_SERVICE = 10
CUSTOMERS = 8  # each on two services: every notice goes to four of them
RUN_S = 4.0
# Between an operator's rounds: each round mails every customer of its services, and the
# outbox must drain by the end of the test.
OPERATOR_PAUSE_S = 0.1
HOUR = 3600.0
WAL_HEADER = 32
FRAME_HEADER = 24
# One transaction of the daemon is a tick's results (40 checks × 10/s × 250 ms) or one
# commit of notices: a few dozen pages. 256 pages of headroom over the autocheckpoint
# threshold is far above that and far below a WAL that nobody folds in.
TRANSACTION_HEADROOM_PAGES = 256


def _checks_yaml(state: Path, tokens: Path, url: str, smtp_port: int) -> str:
    services = "\n".join(f"  - {{id: {s}, name: {{fr: {s}, en: {s}}}}}" for s in SERVICES)
    checks = "\n".join(
        f'  - {{id: {s}-{n}, service: {s}, type: http, url: "{url}{s}/{n}"}}'
        for s in SERVICES
        for n in range(CHECKS_PER_SERVICE)
    )
    customers = "\n".join(
        f"  - {{id: c{n}, name: C{n}, email: c{n}@example.net, language: en, "
        f"services: [{SERVICES[n % 4]}, {SERVICES[(n + 1) % 4]}]}}"
        for n in range(CUSTOMERS)
    )
    return f"""\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", public_url: "https://status.example.net",
         timezone: Europe/Paris, api_tokens_file: "{tokens}"}}
defaults: {{interval: 100ms, timeout: 1s, retry_interval: 50ms,
           failure_threshold: 2, success_threshold: 2}}
services:
{services}
checks:
{checks}
customers:
{customers}
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  customer_delay: 0s
  update_every: 2s
  stable_for: 300ms
  retry_initial: 100ms
  digest_window: 0s
"""


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event of the test, captured."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@dataclass
class Operators:
    """Operators on the HTTP API: every call made, and those that did not succeed."""

    base: str
    calls: int = 0
    failed: list[tuple[str, str, int, str]] = field(default_factory=list)

    async def call(
        self, session: aiohttp.ClientSession, method: str, path: str, expect: int, **kw: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {WRITE}"}
        async with session.request(method, self.base + path, headers=headers, **kw) as response:
            self.calls += 1
            body: dict[str, Any] = await response.json()
            if response.status != expect:
                self.failed.append((method, path, response.status, str(body)[:200]))
            return body


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


async def _windows(ops: Operators, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    """Add a window (announced at once), extend it, cancel it; again and again."""
    n = 0
    while not stop.is_set():
        n += 1
        start = time.time() + HOUR
        body = {
            "id": f"release-{n}",
            "services": ["s2", "s3"],
            "start": _iso(start),
            "end": _iso(start + HOUR),
            "announce_before": "2h",
            "summary": {"fr": "Mise à jour", "en": "Upgrade"},
        }
        await ops.call(session, "POST", "/api/v1/maintenance", 201, json=body)
        end = {"end": _iso(start + 2 * HOUR)}
        await ops.call(session, "POST", f"/api/v1/maintenance/release-{n}/extend", 200, json=end)
        await ops.call(session, "DELETE", f"/api/v1/maintenance/release-{n}", 200)
        await asyncio.sleep(OPERATOR_PAUSE_S)


async def _updates(
    ops: Operators, session: aiohttp.ClientSession, daemon: Daemon, stop: asyncio.Event
) -> None:
    """Post news on the s0 incident and read it back, as fast as the API answers."""
    incident = daemon.engine.covering("s0")
    assert incident is not None
    n = 0
    while not stop.is_set():
        n += 1
        path = f"/api/v1/incidents/{incident.id}"
        message = {"message": f"Still on it ({n})"}
        await ops.call(session, "POST", f"{path}/update", 200, json=message)
        await ops.call(session, "GET", path, 200)
        await ops.call(session, "GET", "/api/v1/incidents?all=1", 200)
        await asyncio.sleep(OPERATOR_PAUSE_S)


async def _outside_reader(db: Path, stop: asyncio.Event) -> int:
    """Query the file from another thread on its own connection, as a backup would."""

    def read(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT COUNT(*) FROM results").fetchone()
        conn.execute("SELECT key, status FROM outbox ORDER BY created_at DESC LIMIT 50").fetchall()

    reads = 0
    conn = sqlite3.connect(db, check_same_thread=False)
    try:
        while not stop.is_set():
            await asyncio.to_thread(read, conn)
            reads += 1
            await asyncio.sleep(0.01)
    finally:
        conn.close()
    return reads


async def _sample_wal(wal: Path, stop: asyncio.Event, sizes: list[int]) -> None:
    while not stop.is_set():
        size = _size(wal)
        if size is not None:
            sizes.append(size)
        await asyncio.sleep(0.01)


def _size(path: Path) -> int | None:
    """The file's size, or None when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _wal_bound(page_size: int) -> int:
    """The -wal size the daemon's own writes can reach: see TRANSACTION_HEADROOM_PAGES."""
    pages = WAL_AUTOCHECKPOINT_PAGES + TRANSACTION_HEADROOM_PAGES
    return WAL_HEADER + pages * (FRAME_HEADER + page_size)


async def test_api_writes_results_and_deliveries_together_never_hit_a_locked_database(
    tmp_path: Path,
    target: Target,
    smtp: FailingSmtpServer,
    logs: list[MutableMapping[str, Any]],
) -> None:
    """Seconds of API writes, result flushes and deliveries: no lock error, a bounded WAL."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{WRITE}\n", encoding="utf-8")
    path = tmp_path / "checks.yaml"
    path.write_text(_checks_yaml(tmp_path / "state", tokens, target.url, smtp.port), "utf-8")
    daemon = Daemon(load_config(path))
    await daemon.start()
    db = tmp_path / "state" / DB_NAME
    wal = db.with_name(DB_NAME + "-wal")
    sizes: list[int] = []
    stop = asyncio.Event()
    try:
        await until(lambda: all(s.status is CheckStatus.UP for s in daemon.engine.states.values()))
        target.broken = {"s0", "s1"}
        await until(lambda: daemon.engine.covering("s0") is not None)
        ops = Operators(f"http://127.0.0.1:{daemon.port}")
        async with aiohttp.ClientSession() as session:
            workers = [
                asyncio.create_task(_windows(ops, session, stop)),
                asyncio.create_task(_updates(ops, session, daemon, stop)),
                asyncio.create_task(_sample_wal(wal, stop, sizes)),
            ]
            reader = asyncio.create_task(_outside_reader(db, stop))
            started = time.monotonic()
            try:
                await holds(lambda: not any(w.done() for w in (*workers, reader)), RUN_S / 2)
                target.broken = {"s0", "s3"}  # s1 recovers and resolves, s3 opens
                await until(lambda: daemon.engine.covering("s3") is not None)
                remaining = RUN_S - (time.monotonic() - started)
                await holds(lambda: not any(w.done() for w in (*workers, reader)), remaining)
            finally:
                stop.set()
                await asyncio.gather(*workers)
                reads = await reader
        target.broken = set()
        await until(lambda: not daemon.engine.open, timeout_s=5)
        await until(lambda: daemon.store.pending_count() == 0, timeout_s=10)
        results = daemon.store.minute_tallies(0.0)
        page_size = int(sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0])
    finally:
        stop.set()
        await daemon.stop(deadline_s=1.0)

    probed = sum(t.total for t in results)
    print(
        f"api calls {ops.calls}, outside reads {reads}, results {probed}, "
        f"mails {len(smtp.messages)}, wal max {max(sizes)} B over {len(sizes)} samples, "
        f"bound {_wal_bound(page_size)} B; after the peak: {sizes[sizes.index(max(sizes)) :][:6]}"
    )
    assert ops.failed == []
    assert ops.calls >= 30
    assert reads >= 30
    assert probed >= 40 * RUN_S * 5  # probing kept going (half its nominal rate at least)
    assert len(smtp.messages) >= 20
    problems = [
        e
        for e in logs
        if "locked" in str(e)
        or e.get("log_level") in ("error", "critical")
        or e["event"] in ("store_write_failed", "probe_bug", "dispatcher_iteration_failed")
    ]
    assert problems == []
    assert max(sizes) <= _wal_bound(page_size)
    # Once folded in, a WAL that grew past journal_size_limit is cut back to it when reused.
    peak = sizes.index(max(sizes))
    if max(sizes) > WAL_SIZE_LIMIT_BYTES and peak < len(sizes) - 1:
        assert min(sizes[peak:]) <= WAL_SIZE_LIMIT_BYTES


def test_the_checkpoint_cuts_the_wal_back_once_a_pinning_reader_lets_go(tmp_path: Path) -> None:
    """A reader holding old pages lets the WAL grow; once it ends, the next checkpoint truncates."""
    store = SqliteStore.open(tmp_path / "state")
    wal = store.path.with_name(DB_NAME + "-wal")
    reader = sqlite3.connect(store.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM results").fetchone()  # pins the snapshot
        for batch in range(40):
            store.write_results(
                [ProbeResult(f"c{n}", 1e9 + batch + n / 1e4, ok=True) for n in range(1000)]
            )
        pinned = wal.stat().st_size
        store.checkpoint()  # returns at once: the reader still needs those pages
        assert wal.stat().st_size == pinned
        reader.execute("COMMIT")
        store.checkpoint()
        assert wal.stat().st_size == 0
        store.write_results([ProbeResult("c0", 2e9, ok=True)])
        assert wal.stat().st_size <= WAL_SIZE_LIMIT_BYTES
    finally:
        reader.close()
        store.close()
    print(f"pinned wal {pinned} B, then 0 B after the checkpoint")
    assert pinned > WAL_SIZE_LIMIT_BYTES


async def test_the_retention_loop_checkpoints_on_its_own_timer(tmp_path: Path) -> None:
    """Without any pruning due, the retention loop still folds the WAL in and empties it."""
    store = SqliteStore.open(tmp_path / "state")
    wal = store.path.with_name(DB_NAME + "-wal")
    store.write_results([ProbeResult(f"c{n}", 1e9 + n, ok=True) for n in range(5000)])
    assert wal.stat().st_size > 0
    loop = asyncio.create_task(
        retention_loop(store, HOUR, time.time, first_after=HOUR, checkpoint_every=0.05)
    )
    try:
        await until(lambda: wal.stat().st_size == 0, timeout_s=2)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        store.close()
    assert _size(wal) is None  # closing the last connection folded and removed it
