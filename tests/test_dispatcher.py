"""The Dispatcher draining a real SQLite outbox into a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from monitor.core.notice import Notice
from monitor.delivery.dispatcher import Dispatcher
from monitor.runtime.metrics import Metrics
from monitor.store.sqlite import SqliteStore
from notifiers.base import NotifierError
from tests.builders import addressed_notice
from tests.dispatching import counted, dispatching, email_notifier, logged, outcomes
from tests.smtp_server import FailingSmtpServer
from tests.waiting import LoopLateness, until

NOW = 1_700_000_000.0


async def test_every_pending_notice_is_sent_exactly_once(
    store: SqliteStore, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """Notices committed before and during the run each reach the server once, despite wakes."""
    smtp.slow_s = 0.002
    metrics = Metrics()
    early = [addressed_notice(f"c{i}") for i in range(10)]
    late = [addressed_notice(f"c{i}") for i in range(10, 40)]
    store.commit(notices=early)
    async with dispatching(
        store, {"email": email_notifier(smtp.port, tmp_path)}, metrics, concurrency=4, batch=7
    ) as dispatcher:
        started = dispatcher.last_progress
        store.commit(notices=late)
        for _ in range(20):  # wake storms must not fetch what is already in flight
            dispatcher.wake()
            await asyncio.sleep(0.005)
        await smtp.wait_for(40, 10)
        await until(lambda: store.pending_count() == 0)
        await asyncio.sleep(0.05)  # room for any duplicate to show up
        assert dispatcher.last_progress > started
    assert len(smtp.messages) == 40
    assert len({m.message["Message-ID"] for m in smtp.messages}) == 40
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(
        n.address for n in early + late
    )
    assert all(outcomes(store, n.key) == ["sent"] for n in early + late)
    assert counted(metrics, "sent") == 40
    assert metrics.registry.get_sample_value("forewarn_outbox_pending") == 0


async def test_421_on_mail_is_retried_until_each_notice_is_delivered_once(
    store: SqliteStore, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """While the server says 421 notices are retried with backoff, then each is sent once."""
    smtp.fail_mail_with = (421, "4.3.0 try later")
    metrics = Metrics()
    notices = [addressed_notice(f"c{i}") for i in range(5)]
    store.commit(notices=notices)
    async with dispatching(store, {"email": email_notifier(smtp.port, tmp_path)}, metrics):
        await until(lambda: all(len(store.deliveries(n.key)) >= 2 for n in notices))
        assert smtp.messages == [] and store.pending_count() == 5
        smtp.fail_mail_with = None
        await smtp.wait_for(5, 5)
        await until(lambda: store.pending_count() == 0)
    assert len(smtp.messages) == 5
    assert len({m.message["Message-ID"] for m in smtp.messages}) == 5
    for notice in notices:
        log = outcomes(store, notice.key)
        assert log[-1] == "sent" and set(log[:-1]) == {"retry"} and len(log) >= 3
    assert counted(metrics, "sent") == 5 and counted(metrics, "retry") >= 10


async def test_hard_bounce_fails_that_notice_suppresses_the_address_and_spares_the_rest(
    store: SqliteStore, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """A 550 5.1.1 fails one notice and suppresses its address; later notices to it are not sent."""
    smtp.reject_rcpt = {"bad@x.example": "550 5.1.1 no such user"}
    metrics = Metrics()
    store.commit(
        notices=[addressed_notice("good1"), addressed_notice("bad"), addressed_notice("good2")]
    )
    async with dispatching(store, {"email": email_notifier(smtp.port, tmp_path)}, metrics) as d:
        await until(lambda: store.pending_count() == 0)
        assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [
            "good1@x.example",
            "good2@x.example",
        ]
        assert outcomes(store, "inc-1:1:bad") == ["failed"]
        assert store.suppressed(["BAD@x.example"]) == {"BAD@x.example"}
        store.commit(notices=[addressed_notice("bad", sequence=2)])
        d.wake()
        await until(lambda: store.pending_count() == 0)
    assert store.deliveries("inc-1:2:bad")[0][1:] == ("failed", "suppressed")
    assert smtp.commands.count("RCPT") == 3  # the second notice to bad@ never reached SMTP
    assert len(smtp.messages) == 2
    assert (counted(metrics, "sent"), counted(metrics, "failed")) == (2, 1)
    assert counted(metrics, "suppressed") == 1


async def test_drop_after_data_is_retried_as_ambiguous_with_the_same_message_id(
    store: SqliteStore, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """A reply lost after DATA counts as ambiguous; the retry reuses the Message-ID."""
    smtp.drop_after_data = True

    def heal(_: object) -> None:
        smtp.drop_after_data = False

    smtp.on_message = heal
    metrics = Metrics()
    notice = addressed_notice("acme")
    store.commit(notices=[notice])
    async with dispatching(store, {"email": email_notifier(smtp.port, tmp_path)}, metrics):
        await until(lambda: store.pending_count() == 0)
    assert 1 <= len(smtp.messages) <= 2
    assert len({m.message["Message-ID"] for m in smtp.messages}) == 1
    assert outcomes(store, notice.key) == ["retry", "sent"]
    assert (counted(metrics, "ambiguous"), counted(metrics, "sent")) == (1, 1)
    assert counted(metrics, "retry") == 0


async def test_notices_wait_while_the_server_is_down_and_go_when_it_starts(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Connection refused keeps notices pending; once a server listens they are delivered."""
    async with FailingSmtpServer() as probe:
        port = probe.port  # now closed
    notices = [addressed_notice("c1"), addressed_notice("c2")]
    store.commit(notices=notices)
    metrics = Metrics()
    async with dispatching(store, {"email": email_notifier(port, tmp_path)}, metrics):
        await until(lambda: all(outcomes(store, n.key)[:2] == ["retry"] * 2 for n in notices))
        assert store.pending_count() == 2
        async with FailingSmtpServer(port=port) as smtp:
            await smtp.wait_for(2, 5)
            await until(lambda: store.pending_count() == 0)
    assert len(smtp.messages) == 2


async def test_stop_cancels_late_sends_and_leaves_them_pending(
    store: SqliteStore, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """Sends still running at the deadline are cancelled and stay pending for the next run."""
    smtp.slow_s = 0.05
    notices = [addressed_notice(f"c{i}") for i in range(6)]
    store.commit(notices=notices)
    metrics = Metrics()
    notifier = email_notifier(smtp.port, tmp_path)
    dispatcher = Dispatcher(store, {"email": notifier}, metrics, concurrency=2, retry_base=0.01)
    task = asyncio.create_task(dispatcher.run())
    await until(lambda: "MAIL" in smtp.commands)
    await dispatcher.stop(0.01)
    await asyncio.wait_for(task, 1)
    await notifier.close()
    assert smtp.messages == []
    assert store.pending_count() == 6
    assert all(store.deliveries(n.key) == [] for n in notices)  # cancelled, not failed
    smtp.slow_s = 0.0
    async with dispatching(store, {"email": email_notifier(smtp.port, tmp_path)}, metrics):
        await until(lambda: store.pending_count() == 0)
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == sorted(n.address for n in notices)


class FlakyNotifier:
    """A notifier with a bug on its first call, then working: the loop must survive it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def send(self, notice: Notice) -> None:
        """Raise an unexpected error the first time, succeed afterwards."""
        self.calls.append(notice.key)
        if len(self.calls) == 1:
            raise KeyError("bug in a notifier")

    async def close(self) -> None:
        """Nothing to release."""


async def test_an_unexpected_notifier_error_is_retried_and_the_loop_goes_on(
    store: SqliteStore,
) -> None:
    """A notifier raising something other than NotifierError is treated as transient."""
    notifier = FlakyNotifier()
    metrics = Metrics()
    notice = addressed_notice("ops", channel="webhook", address="http://127.0.0.1:9/hook")
    store.commit(notices=[notice])
    async with dispatching(store, {"webhook": notifier}, metrics):
        await until(lambda: store.pending_count() == 0)
    assert notifier.calls == [notice.key, notice.key]
    assert outcomes(store, notice.key) == ["retry", "sent"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        """The current fake time."""
        return self.now


class DownNotifier:
    """A channel that always fails transiently."""

    async def send(self, notice: Notice) -> None:
        """Always fail, transiently."""
        raise NotifierError("503 try later", permanent=False, code=503)

    async def close(self) -> None:
        """Nothing to release."""


async def test_retry_delays_grow_exponentially_with_jitter_up_to_retry_max(
    store: SqliteStore,
) -> None:
    """Delay n is uniform(base/2, min(max, base * 2**(n-1))), drawn from the injected rng."""
    clock = Clock(NOW)
    store.commit(notices=[addressed_notice("ops", channel="webhook", created_at=NOW)])
    expected = random.Random(42)
    options = {"clock": clock, "retry_base": 1.0, "retry_max": 5.0, "rng": random.Random(42)}
    async with dispatching(store, {"webhook": DownNotifier()}, Metrics(), **options) as d:
        for attempt in range(6):
            await until(logged(store, "inc-1:1:ops", attempt + 1))
            delay = (store.next_attempt_at() or 0) - clock.now
            ceiling = min(5.0, 1.0 * 2**attempt)
            assert delay == pytest.approx(expected.uniform(0.5, ceiling))
            assert 0.5 <= delay <= ceiling
            clock.now += 10
            d.wake()
    assert store.pending_count() == 1


async def test_max_per_second_paces_sends_without_counting_attempts(
    store: SqliteStore, smtp: FailingSmtpServer, tmp_path: Path
) -> None:
    """At 100/s, 20 notices all arrive once, spread over ≥ 19 token intervals, none retried."""
    arrivals: list[float] = []
    smtp.on_message = lambda _: arrivals.append(time.monotonic())
    metrics = Metrics()
    notices = [addressed_notice(f"c{i}") for i in range(20)]
    store.commit(notices=notices)
    began = time.monotonic()  # before the dispatcher and its token bucket are made
    async with dispatching(
        store,
        {"email": email_notifier(smtp.port, tmp_path)},
        metrics,
        concurrency=8,
        max_per_second=100.0,
    ):
        await smtp.wait_for(5, 2)
        # Paced notices wait in the outbox: pending, with no attempt logged.
        waiting = [n for n in notices if not store.deliveries(n.key)]
        assert len(waiting) >= 5 and store.pending_count() >= len(waiting)
        await smtp.wait_for(20, 2)
        await until(lambda: store.pending_count() == 0)
    assert len({m.message["Message-ID"] for m in smtp.messages}) == 20 == len(smtp.messages)
    assert all(outcomes(store, n.key) == ["sent"] for n in notices)
    # One token at start, then one every 10 ms: the 20th starts 190 ms after the bucket is
    # made, however late the first send was (a late loop finds tokens saved up and spends them).
    assert arrivals[-1] - began >= 0.19 - 1e-6
    assert counted(metrics, "sent") == 20


class RecordingNotifier:
    """A channel that notes when each send starts and takes a moment to finish."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    async def send(self, notice: Notice) -> None:
        """Record the start time, then answer after 20 ms."""
        self.starts.append(time.monotonic())
        await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize(
    ("max_per_second", "spread"),
    [(None, (0.0, 0.02)), (200.0, (0.095 - 1e-6, 0.3))],
    ids=["unpaced-all-at-once", "paced-5ms-apart"],
)
async def test_sends_start_paced_only_when_asked(
    store: SqliteStore, max_per_second: float | None, spread: tuple[float, float]
) -> None:
    """Without max_per_second, 20 sends start together; at 200/s they spread over ≥ 95 ms."""
    notifier = RecordingNotifier()
    notices = [
        addressed_notice(f"c{i}", channel="webhook", address=f"http://h/{i}") for i in range(20)
    ]
    store.commit(notices=notices)
    options = {"concurrency": 20, "max_per_second": max_per_second}
    async with LoopLateness() as lateness:
        began = time.monotonic()  # before the dispatcher and its token bucket are made
        async with dispatching(store, {"webhook": notifier}, Metrics(), **options):
            await until(lambda: store.pending_count() == 0, timeout_s=5)
    starts = notifier.starts
    assert len(starts) == 20
    low, high = spread
    # Paced: one token at start, then one per 5 ms, so the 20th starts ≥ 95 ms after the
    # bucket is made, however late the first send was. (Single gaps may be ~0: a late loop
    # finds two tokens and rightly spends both.) At most ``high`` after the first, and what a
    # busy machine delayed the loop by.
    assert starts[-1] - began >= low
    assert starts[-1] - starts[0] <= high + lateness.worst
