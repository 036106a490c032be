"""Drains the outbox: bounded concurrent sends, jittered exponential retries, suppression."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from zoneinfo import ZoneInfo

import structlog

from monitor.config.notices import OpsChannel
from monitor.core.notice import Notice
from monitor.delivery.pacing import TokenBucket
from monitor.delivery.watch import DeliveryWatch, Episode, Outcome
from monitor.notices.ops import delivery_alerts
from monitor.runtime.metrics import Metrics
from monitor.store.base import OutboxItem, Store, StoreUnavailable, WriteFailures
from notifiers import NOTIFIERS
from notifiers.base import Notifier, NotifierError

log = structlog.get_logger(__name__)

# The loop runs at least this often even when idle, so ``last_progress`` stays fresh for the
# watchdog and a notice made due by another process is noticed.
_TICK_S = 1.0
_UTC = ZoneInfo("UTC")
_MAX_EXPONENT = 60  # 2**attempts beyond this only overflows; retry_max caps it long before


# A claimed notice is nobody else's for this long: longer than a send takes (the SMTP timeout
# bounds each step) plus a database outage during which its outcome cannot be recorded (the
# sender records it as soon as the database is back). The price: a notice whose sender died
# mid-send waits this long before another instance sends it.
CLAIM_FOR_S = 300.0


def crash_window(concurrency: int) -> int:
    """At most this many notices are sent but not yet recorded, hence resent after a crash:
    those in flight (each outcome is written as soon as its send ends)."""
    return concurrency


class Dispatcher:
    """Sends what the outbox holds, once each, and records every attempt's outcome."""

    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int = 8,
        retry_base: float = 5.0,
        retry_max: float = 900.0,
        batch: int = 200,
        rng: random.Random | None = None,
        max_per_second: float | None = None,
        ops: Sequence[OpsChannel] = (),
        zone: ZoneInfo = _UTC,  # daemon.timezone, for the times ops read
        alarm_after: float = 120.0,  # a channel failing this long without a success is news
        claim_as: str | None = None,  # sharing the outbox: claim notices under this name
        claim_for: float = CLAIM_FOR_S,
    ) -> None:
        if concurrency < 1 or batch < 1:
            raise ValueError("concurrency and batch must be at least 1")
        self._concurrency = concurrency
        # Pacing runs on time.monotonic, not on ``clock``: that is wall time for due dates
        # (and may be a hand-moved fake), while a rate needs a steady clock.
        self._bucket = (
            None if max_per_second is None else TokenBucket(max_per_second, time.monotonic())
        )
        self._store = store
        self._notifiers = notifiers
        self._metrics = metrics
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._batch = batch
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Outcomes of finished sends that the store failed to record, retried by the loop;
        # their keys are held back so a notice already sent is not sent again meanwhile.
        self._unrecorded: dict[str, Callable[[], None]] = {}
        self._stopping = False
        self._ops = list(ops)
        self._zone = zone
        self._claim_as, self._claim_for = claim_as, claim_for
        # Channels failing (at once for a setup reason): ops hear once per episode.
        self.watch = DeliveryWatch(alarm_after)
        self.last_progress = time.monotonic()
        self._unreachable = WriteFailures()  # the outbox's database away: episodes, not ticks

    def set_ops(self, ops: Sequence[OpsChannel]) -> None:
        """Adopt the ops channels of a reloaded config."""
        self._ops = list(ops)

    def wake(self) -> None:
        """New notices were committed: look at the outbox now."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver due notices until stop(), sleeping until the next is due or wake()."""
        try:
            while not self._stopping:
                self.last_progress = time.monotonic()
                self._wake.clear()
                try:
                    delay = self._iterate()
                except StoreUnavailable as exc:
                    # PostgreSQL away: one line when it goes and one when it is back, rather
                    # than a traceback every tick; what is due waits in the outbox meanwhile.
                    self._unreachable.failed("outbox", exc)
                    delay = _TICK_S
                except Exception:
                    log.exception("dispatcher_iteration_failed")
                    delay = _TICK_S
                else:
                    self._unreachable.succeeded("outbox")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            if not self._stopping:  # cancelled rather than stopped: leave no orphan sends
                tasks = list(self._in_flight.values())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self, deadline_s: float) -> None:
        """Take no new notices; give sends in flight ``deadline_s``, then cancel them."""
        self._stopping = True
        self._wake.set()
        tasks = list(self._in_flight.values())
        late: set[asyncio.Task[None]] = set()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=deadline_s)
            for task in late:
                task.cancel()  # a cancelled send records nothing: it stays pending
            await asyncio.gather(*late, return_exceptions=True)
        log.info("dispatcher_stopped", cancelled=len(late))

    def _iterate(self) -> float:
        """Start what is due; return how long to sleep before looking again."""
        for key, write in list(self._unrecorded.items()):
            write()
            del self._unrecorded[key]
        now = self._clock()
        room = self._batch - len(self._in_flight)
        if self._in_flight and room < self._batch // 2 and self._bucket is None:
            # Plenty queued still: refill by half-batches, not after every finished send,
            # so that 10,000 sends do not read the outbox 10,000 times. A send ending wakes us.
            return _TICK_S
        if self._bucket is not None:
            # Paced, a send starts when its task does: only as many as have both a token and a
            # free slot, so none queue on the semaphore and burst out later. The rest stay
            # pending in the outbox, with no attempt counted.
            free = self._concurrency - len(self._in_flight)
            room = min(room, free, self._bucket.available(time.monotonic()))
        if room > 0:
            held = self._in_flight.keys() | self._unrecorded.keys()
            for item in self._due(now, room, len(held)):
                if room == 0:
                    break
                if item.notice.key not in held:
                    if self._bucket is not None:
                        self._bucket.take(time.monotonic())
                    self._start(item)
                    room -= 1
        self._metrics.outbox_pending.set(self._store.pending_count())
        self._alarm(self.watch.due(now))
        next_at = self._store.next_attempt_at()
        if next_at is None:
            return _TICK_S
        if next_at <= now and self._bucket is not None:
            wait = self._bucket.delay(time.monotonic())
            if wait > 0:  # out of tokens with work due: look again when the next one comes
                return min(_TICK_S, wait)
        if next_at <= now and (self._in_flight or self._unrecorded):
            # What is due is ours already (or waits for room): a finished send wakes us.
            return _TICK_S
        return min(_TICK_S, max(0.0, next_at - now))

    def _due(self, now: float, room: int, held: int) -> list[OutboxItem]:
        """Due notices to start: claimed for us when instances share the outbox."""
        if self._claim_as is None:
            # Over-fetch by what is held: those rows are still pending and due.
            return self._store.due_notices(now, room + held)
        return self._store.claim_due(now, room, self._claim_as, self._claim_for)

    def _start(self, item: OutboxItem) -> None:
        key = item.notice.key
        self._in_flight[key] = asyncio.create_task(self._deliver(item), name=f"deliver {key}")

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            async with self._slots:
                if self._stopping:
                    return  # never started: stays pending for the next run
                await self._attempt(item)
        except Exception:
            log.exception("delivery_crashed", key=item.notice.key)
        finally:
            self._in_flight.pop(item.notice.key, None)
            self._wake.set()

    @staticmethod
    def _suppressible(channel: str) -> bool:
        """Whether bounced and unsubscribed addresses are skipped on this channel (email)."""
        kind = NOTIFIERS.get(channel)
        return kind is not None and kind.suppressible

    async def _attempt(self, item: OutboxItem) -> None:
        notice = item.notice
        error: NotifierError | None = None
        if self._suppressible(notice.channel) and self._store.suppressed([notice.address]):
            at = self._clock()
            self._record(notice.key, partial(self._store.mark_failed, notice.key, at, "suppressed"))
            outcome = "suppressed"
        else:
            notifier = self._notifiers.get(notice.channel)
            try:
                if notifier is None:
                    raise NotifierError(
                        f"no notifier for channel {notice.channel!r}", permanent=True
                    )
                await notifier.send(notice)
            except NotifierError as exc:
                error = exc
            except Exception as exc:
                # A notifier bug must not lose the notice nor stop the loop: retry it later.
                log.error(
                    "notifier_bug",
                    key=notice.key,
                    channel=notice.channel,
                    traceback=_redact("".join(traceback.format_exception(exc)), notice.address),
                )
                error = NotifierError(f"unexpected {type(exc).__name__}: {exc}", permanent=False)
            outcome = self._settle(item, error)
            self._watch(notice, error)
        self._metrics.notices.labels(
            channel=notice.channel, kind=notice.kind.value, outcome=outcome
        ).inc()
        extra = (
            {}
            if error is None
            else {"error": _redact(error.message, notice.address), "code": error.code}
        )
        log.info(
            "delivery",
            key=notice.key,
            channel=notice.channel,
            kind=notice.kind.value,
            recipient=notice.recipient,
            outcome=outcome,
            attempt=item.attempts + 1,
            **extra,
        )

    def _settle(self, item: OutboxItem, error: NotifierError | None) -> str:
        """Record the attempt's result in the outbox; return the metrics outcome."""
        notice, store = item.notice, self._store
        at = self._clock()
        if error is None:
            self._record(notice.key, partial(store.mark_sent, notice.key, at))
            return "sent"
        if error.permanent:

            def failed() -> None:
                if error.hard_bounce:
                    store.suppress(notice.address, "hard_bounce", at)
                store.mark_failed(notice.key, at, error.message)

            self._record(notice.key, failed)
            return "failed"
        exponent = min(item.attempts, _MAX_EXPONENT)
        ceiling = min(self._retry_max, self._retry_base * 2.0**exponent)
        retry_at = at + self._rng.uniform(self._retry_base / 2, ceiling)
        self._record(notice.key, partial(store.mark_retry, notice.key, at, retry_at, error.message))
        return "ambiguous" if error.ambiguous else "retry"

    def _watch(self, notice: Notice, error: NotifierError | None) -> None:
        """Follow the channel's episode: failing at once (setup), for long, or recovered."""
        if error is None:
            outcome, reason = Outcome.SENT, ""
        else:
            reason = _redact(error.message, notice.address)
            outcome = (
                Outcome.SETUP if error.setup
                else Outcome.RECIPIENT if error.permanent
                else Outcome.TRANSIENT
            )  # fmt: skip
        ended = self.watch.observe(notice.channel, outcome, reason, self._clock())
        if ended is not None and ended.told:
            failing_s = round(self._clock() - ended.since, 1)
            log.info("delivery_recovered", channel=ended.channel, failing_s=failing_s)
        self._alarm(self.watch.due(self._clock()))

    def _alarm(self, news: list[Episode]) -> None:
        """Tell the ops channels on other channels, once per episode."""
        for episode in news:
            channel, reason = episode.channel, episode.reason
            event = "delivery_setup_failing" if episode.urgent else "delivery_failing"
            log.error(event, channel=channel, error=reason, since=episode.since)
            alerts = delivery_alerts(self._ops, channel, reason, episode.since, self._zone)
            if alerts:
                try:
                    self._store.commit(notices=alerts)
                except Exception:
                    log.exception("ops_alert_not_stored", channel=channel)

    def _record(self, key: str, write: Callable[[], None]) -> None:
        try:
            write()
        except Exception:
            log.exception("outbox_write_failed", key=key)
            self._unrecorded[key] = write


def _redact(text: str, address: str) -> str:
    """``text`` without the recipient's address: logs name recipients by id only."""
    if not address:
        return text
    return re.sub(re.escape(address), "<address>", text, flags=re.IGNORECASE)
