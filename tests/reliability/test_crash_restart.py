"""``kill -9`` during a 1,000-notice burst, then restart: nothing lost, duplicates only in flight.

A real daemon subprocess probes a real aiohttp target that the test turns from 200 to 500; the
incident's service has 1,000 customers, so one transaction puts 1,000 first notices in the
outbox. The dispatcher sends them to a real SMTP server in this process, which records every
message it accepts and waits a few milliseconds before its final 250, so that a kill often lands
between "the server has the message" and "the outbox says sent". The test SIGKILLs the daemon
at seeded random moments of the burst (a quarter of them while a restarted daemon starts up),
restarts it on the same state directory, and checks:

- zero lost: every customer's notice arrives; no outbox row says sent that the server lacks;
- duplicates carry the Message-ID of the first copy, and each one is a message the server had
  accepted while its row was still pending at the moment of a kill (the in-flight window),
  at most ``crash_window`` (the dispatcher's concurrency) per kill;
- no row stuck: once drained and stopped, every outbox row is ``sent``, delivered once.

Reproduce a failure with ``FOREWARN_CRASH_SEED=<seed printed by the test>``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP

from monitor.cli.smtpsink import ReceivedMessage, SmtpSink
from monitor.delivery.dispatcher import Dispatcher, crash_window
from notifiers.message import message_id
from tests.reliability.daemon_process import DaemonProcess
from tests.waiting import until

SENDER = "Support <support@example.net>"
CUSTOMERS = 1000
# At most this many notices are between "taken from the outbox" and "recorded as sent" when
# the process dies: those in flight, bounded by the dispatcher's concurrency (the default).
WINDOW: int = crash_window(inspect.signature(Dispatcher).parameters["concurrency"].default)
REPLY_DELAY_S = 0.005  # the sink's pause between accepting a message and saying 250
KILL_JITTER_S = 0.02  # a kill waits a random part of this after its message count is reached
STARTUP_KILL_SHARE = 0.25  # of the kills after the first, how many land during a restart
STARTUP_KILL_SPAN_S = 1.5  # such a kill comes at a random moment this long after the spawn
WAIT_TIMEOUT_S = 30.0

CHECKS_YAML = """\
daemon: {{state_dir: {state}, listen: "127.0.0.1:0", public_url: "https://status.example.net",
         timezone: UTC}}
defaults: {{interval: 200ms, timeout: 2s, retry_interval: 100ms, failure_threshold: 2,
           success_threshold: 1}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{target}"}}
customers: {{file: customers.csv}}
notices:
  from: "{sender}"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 10s}}
  customer_delay: 0s
  digest_window: 0s
  update_every: 1h
  stable_for: 1h
  retry_initial: 200ms
  retry_max: 1s
"""


class CrashSink(SmtpSink):
    """The recording SMTP server, slow to confirm: it keeps a message, then waits to say 250."""

    def __init__(self, reply_delay_s: float) -> None:
        super().__init__(on_message=self._note)
        self.reply_delay_s = reply_delay_s
        self.protocols: list[SMTP] = []
        self.ids: list[str] = []  # the Message-ID of every accepted message, in arrival order
        self.distinct: set[str] = set()

    def _note(self, received: ReceivedMessage) -> None:
        mid = str(received.message["Message-ID"])
        self.ids.append(mid)
        self.distinct.add(mid)

    def make_protocol(self) -> SMTP:
        """A session like the sink's, remembered so the test can see when all have ended."""
        protocol = super().make_protocol()
        self.protocols.append(protocol)
        return protocol

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        """Record the message (it is now delivered), then confirm it a little later."""
        await self.record(envelope)
        await asyncio.sleep(self.reply_delay_s)
        return "250 2.0.0 OK: queued"

    def idle(self) -> bool:
        """Whether every session has ended (a killed client's connections are gone)."""
        return all(protocol.transport is None for protocol in self.protocols)


class Target:
    """The monitored web service: answers ``status`` and counts the probes."""

    def __init__(self) -> None:
        self.status = 200
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        """One probe: the current status with a body the check accepts."""
        self.hits += 1
        return web.Response(status=self.status, text='{"parcelNumber": "6A0"}')


@asynccontextmanager
async def serve(target: Target) -> AsyncIterator[str]:
    """Serve ``target`` on 127.0.0.1 and yield its URL."""
    app = web.Application()
    app.router.add_get("/tracking", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/tracking"
    finally:
        await runner.cleanup()


def write_config(directory: Path, target_url: str, smtp_port: int) -> Path:
    """checks.yaml with one service whose 1,000 customers live in customers.csv."""
    lines = ["id,name,email,language,services"]
    lines += [
        f"c{n:04d},Customer {n},ops{n:04d}@customer.example,{('fr', 'en')[n % 2]},tracking"
        for n in range(CUSTOMERS)
    ]
    (directory / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = directory / "checks.yaml"
    config.write_text(
        CHECKS_YAML.format(
            state=directory / "state", target=target_url, sender=SENDER, smtp_port=smtp_port
        ),
        encoding="utf-8",
    )
    return config


@dataclass(frozen=True)
class Row:
    """One outbox row, as the test reads it from the SQLite file."""

    key: str
    address: str
    kind: str
    status: str
    attempts: int


def read_outbox(database: Path) -> tuple[dict[str, Row], Counter[str]]:
    """Outbox rows by key, and 'sent' deliveries per key, read from the SQLite file."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = {
            key: Row(key, address, kind, status, attempts)
            for key, address, kind, status, attempts in conn.execute(
                "SELECT key, address, kind, status, attempts FROM outbox"
            )
        }
        sent = Counter(
            key for (key,) in conn.execute("SELECT key FROM deliveries WHERE outcome = 'sent'")
        )
    finally:
        conn.close()
    return rows, sent


def read_crashed_outbox(state: Path, scratch: Path) -> tuple[dict[str, Row], Counter[str]]:
    """``read_outbox`` on a copy of the killed daemon's files.

    A copy, because opening the file itself could recover and checkpoint the dead daemon's
    write-ahead log: the next daemon must find the state exactly as the kill left it.
    """
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for name in ("forewarn.db", "forewarn.db-wal"):
        if (state / name).exists():
            shutil.copy2(state / name, scratch / name)
    return read_outbox(scratch / "forewarn.db")


@dataclass
class Kill:
    """What one SIGKILL interrupted."""

    at_message: int  # messages the sink had accepted when the daemon was dead and quiet
    pending: int  # outbox rows still pending then
    in_flight: set[str]  # Message-IDs accepted by the sink whose row was still pending


@dataclass
class Figures:
    """What a run measured, for the report."""

    seed: int
    kills: list[Kill] = field(default_factory=list)
    messages: int = 0
    duplicates_by_kill: list[int] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)  # from the kill to /healthz OK
    startup_kills: int = 0  # kills that landed while the daemon was starting
    burst_s: float = 0.0
    drain_s: float = 0.0
    total_s: float = 0.0


async def crash_restart(tmp_path: Path, kills: int, seed: int) -> Figures:
    """Run the burst with ``kills`` SIGKILLs and restarts; assert the guarantees; the figures."""
    print(f"crash-restart seed={seed} kills={kills} (rerun with FOREWARN_CRASH_SEED={seed})")
    rng = random.Random(seed)
    figures = Figures(seed)
    started = time.monotonic()
    state, scratch = tmp_path / "state", tmp_path / "scratch"
    target = Target()
    async with CrashSink(REPLY_DELAY_S) as sink, serve(target) as url:
        config = write_config(tmp_path, url, sink.port)
        async with DaemonProcess(config, tmp_path / "logs") as daemon:
            await daemon.start()
            await waiting(lambda: target.hits >= 2, "two probes (the check is up)", daemon)
            target.status = 500  # the outage: one incident, 1,000 customers
            burst_started = time.monotonic()
            for done in range(kills):
                if done > 0 and rng.random() < STARTUP_KILL_SHARE:
                    # This kill lands while the daemon starts (imports, opening the state,
                    # its first sends), or just after on a fast machine.
                    moment = time.monotonic() + rng.uniform(0, STARTUP_KILL_SPAN_S)
                    limit = len(sink.distinct) + sendable(sink, kills - done)
                    await daemon.spawn()
                    await waiting(due(sink, moment, limit), "the moment to kill", daemon)
                    figures.startup_kills += 1
                else:
                    if done > 0:
                        killed = time.monotonic()
                        await daemon.start()
                        figures.restart_s.append(time.monotonic() - killed)
                    await wait_for_sends(daemon, sink, rng, kills - done)
                    await asyncio.sleep(rng.uniform(0, KILL_JITTER_S))
                await daemon.kill()
                # No message can arrive from the dead once its connections are gone.
                await waiting(sink.idle, "the killed daemon's SMTP sessions to end", daemon)
                figures.kills.append(check_kill(sink, state, scratch))
            await daemon.start()
            restarted = time.monotonic()
            await drain(daemon)
            figures.drain_s = time.monotonic() - restarted
            figures.burst_s = time.monotonic() - burst_started
            assert await daemon.stop() == 0, "the daemon did not stop cleanly"
    figures.total_s = time.monotonic() - started
    check_end(sink, state, figures)
    report(figures)
    return figures


def reached(sink: CrashSink, distinct: int) -> Callable[[], bool]:
    """A condition: the sink holds at least ``distinct`` different notices."""
    return lambda: len(sink.distinct) >= distinct


def check_kill(sink: CrashSink, state: Path, scratch: Path) -> Kill:
    """After a kill: nothing marked sent is missing; what the sink has but the outbox does not
    know of is the in-flight window, no larger than ``crash_window``."""
    rows, _ = read_crashed_outbox(state, scratch)
    received = set(sink.ids)
    by_id = {message_id(key, SENDER): row for key, row in rows.items()}
    strangers = received - by_id.keys()
    assert not strangers, f"{len(strangers)} Message-IDs at the server match no outbox row"
    lost = {mid for mid, row in by_id.items() if row.status == "sent" and mid not in received}
    assert not lost, f"{len(lost)} notices recorded as sent never reached the server"
    in_flight = {mid for mid in received if by_id[mid].status == "pending"}
    assert len(in_flight) <= WINDOW, f"{len(in_flight)} unrecorded sends, window {WINDOW}"
    pending = sum(row.status == "pending" for row in rows.values())
    assert pending > 0, "the kill came after the burst: the test must kill mid-burst"
    return Kill(len(sink.messages), pending, in_flight)


def due(sink: CrashSink, moment: float, limit: int) -> Callable[[], bool]:
    """A condition: ``moment`` (monotonic) has come, or the sink holds ``limit`` notices."""
    return lambda: time.monotonic() >= moment or len(sink.distinct) >= limit


def sendable(sink: CrashSink, kills_left: int) -> int:
    """How many more notices may go before the next kill: the rest of the burst but a reserve
    of three windows per kill to come, so that every kill lands mid-burst."""
    return CUSTOMERS - len(sink.distinct) - 3 * WINDOW * kills_left


async def wait_for_sends(
    daemon: DaemonProcess, sink: CrashSink, rng: random.Random, kills_left: int
) -> None:
    """Wait for a random number of new notices at the server, leaving some for later kills."""
    distinct = len(sink.distinct)
    quota = (CUSTOMERS - distinct) // (kills_left + 1)
    # The first kill waits for the burst to begin; later ones may land before the restarted
    # dispatcher sent anything.
    low = 1 if distinct == 0 else 0
    wanted = min(rng.randint(low, max(low, 2 * quota)), max(low, sendable(sink, kills_left)))
    what = f"{wanted} more notices after start {daemon.starts}"
    await waiting(reached(sink, distinct + wanted), what, daemon)


async def waiting(condition: Callable[[], object], what: str, daemon: DaemonProcess) -> None:
    """``until`` with a failure message that says what was awaited and how the daemon fared."""
    try:
        await until(condition, timeout_s=WAIT_TIMEOUT_S)
    except AssertionError:
        raise AssertionError(
            f"no {what} within {WAIT_TIMEOUT_S} s; daemon log:\n{daemon.tail()}"
        ) from None


async def drain(daemon: DaemonProcess) -> None:
    """Wait until the daemon says its outbox holds nothing pending (the last kill left some)."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while (health := await daemon.health()) is None or health["outbox_pending"] != 0:
        assert time.monotonic() < deadline, f"outbox not drained: {health}\n{daemon.tail()}"
        await asyncio.sleep(0.02)


def check_end(sink: CrashSink, state: Path, figures: Figures) -> None:
    """After the drain and a clean stop: every notice once in the outbox, at least once at the
    server; each duplicate was in flight at a kill and kept its Message-ID."""
    rows, sent = read_outbox(state / "forewarn.db")  # the daemon has stopped
    addresses = {f"ops{n:04d}@customer.example" for n in range(CUSTOMERS)}
    assert sorted(row.address for row in rows.values()) == sorted(addresses)
    assert {row.kind for row in rows.values()} == {"first"}
    stuck = Counter(row.status for row in rows.values() if row.status != "sent")
    assert not stuck, f"outbox rows not sent: {dict(stuck)}"
    assert all(sent[key] == 1 for key in rows), "a notice recorded as sent more than once"

    by_id = {message_id(key, SENDER): row for key, row in rows.items()}
    ids = sink.ids
    assert set(ids) == by_id.keys(), "zero lost: every notice reached the server"
    copies: dict[str, bytes] = {}
    for mid, received in zip(ids, sink.messages, strict=True):
        row = by_id[mid]
        assert received.rcpt_tos == [row.address]
        assert received.message["To"] == row.address
        # A resent notice is the same email, byte for byte: a mail client shows it once.
        content = received.message.as_bytes()
        assert copies.setdefault(mid, content) == content, f"{mid} changed when resent"

    # A copy after the first is sent by the daemon started after some kill: that kill must
    # have caught its notice in flight (at the server, still pending in the outbox).
    boundaries = [kill.at_message for kill in figures.kills]
    seen: set[str] = set()
    resent: list[set[str]] = [set() for _ in figures.kills]
    duplicates_by_kill = [0] * len(figures.kills)
    for index, mid in enumerate(ids):
        if mid not in seen:
            seen.add(mid)
            continue
        kill = sum(boundary <= index for boundary in boundaries) - 1
        assert kill >= 0, f"{mid} sent twice before any kill"
        assert mid in figures.kills[kill].in_flight, f"{mid} resent but not in flight at a kill"
        assert mid not in resent[kill], f"{mid} sent twice by one daemon"
        resent[kill].add(mid)
        duplicates_by_kill[kill] += 1
    for index, caught in enumerate(figures.kills):
        # Each send a kill left unrecorded is sent again by the next daemon, or that one is
        # killed too while it is still unrecorded: never forgotten.
        later = figures.kills[index + 1].in_flight if index + 1 < len(figures.kills) else set()
        assert caught.in_flight <= resent[index] | later
    assert max(duplicates_by_kill) <= WINDOW
    assert sum(duplicates_by_kill) <= WINDOW * len(figures.kills)
    figures.messages = len(ids)
    figures.duplicates_by_kill = duplicates_by_kill


def report(figures: Figures) -> None:
    """Print what the run measured (shown with ``-s`` or on failure)."""
    print(
        f"seed={figures.seed} kills={len(figures.kills)} (startup={figures.startup_kills}) "
        f"notices={CUSTOMERS} "
        f"messages={figures.messages} duplicates={sum(figures.duplicates_by_kill)} "
        f"per_kill={figures.duplicates_by_kill} window={WINDOW} "
        f"in_flight_at_kill={[len(kill.in_flight) for kill in figures.kills]} "
        f"pending_at_kill={[kill.pending for kill in figures.kills]} "
        f"restart_s(max)={max(figures.restart_s, default=0):.1f} "
        f"burst={figures.burst_s:.1f}s drain_after_last_restart={figures.drain_s:.1f}s "
        f"total={figures.total_s:.1f}s"
    )


def seed() -> int:
    """The seed from FOREWARN_CRASH_SEED, else a fresh one (printed by the test)."""
    fixed = os.environ.get("FOREWARN_CRASH_SEED")
    return int(fixed) if fixed else random.SystemRandom().randrange(2**32)


async def test_kill_9_during_burst_loses_nothing_and_duplicates_only_in_flight(
    tmp_path: Path,
) -> None:
    """Five SIGKILLs during a 1,000-notice burst: zero lost, in-flight duplicates only."""
    figures = await crash_restart(tmp_path, kills=5, seed=seed())
    assert len(figures.kills) == 5


@pytest.mark.soak
async def test_kill_9_twenty_times_during_burst(tmp_path: Path) -> None:
    """Twenty SIGKILLs at random moments of a 1,000-notice burst keep every guarantee."""
    figures = await crash_restart(tmp_path, kills=20, seed=seed())
    assert len(figures.kills) == 20
