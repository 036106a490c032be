"""When each check runs: spread first runs, keep a drift-free grid, retry fast while confirming.

A newly added check gets a grid anchored ``phase_offset`` into its interval, but its first run
comes early, at ``FIRST_ROUND_SHARE`` of that offset: every check has run once three quarters of
an interval after a start or a reload instead of a whole one. The grid itself does not move:
the run after an early first run is the slot after the anchor, so steady-state spreading, and
the grids that unchanged checks keep across a reload, are as they would be without it.

A timeout during which forewarn itself stalled, or a run that failed because forewarn itself
ran out of descriptors, ports or memory, is inconclusive: it never reaches the detector, and
the check runs again soon, as if it had run late instead.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal, Protocol

import structlog

from monitor.probes.base import Probe, ProbeResult, Reason
from monitor.runtime.lag import LagMonitor, conclusive
from monitor.runtime.metrics import Metrics

log = structlog.get_logger("forewarn.scheduler")

Cause = Literal["loop_stall", "local_resources"]
"""Why a run was set aside: the ``cause`` label of ``forewarn_probe_inconclusive_total``."""
STALL: Cause = "loop_stall"
LOCAL: Cause = "local_resources"


class Schedulable(Protocol):
    """What the scheduler reads of a check: a config model, or a probe's slim plan of it."""

    @property
    def id(self) -> str:
        """The check's id."""

    @property
    def type(self) -> str:
        """Its probe kind."""

    @property
    def interval(self) -> float:
        """Seconds between runs."""

    @property
    def timeout(self) -> float:
        """Seconds a run may take."""

    @property
    def retry_interval(self) -> float:
        """Seconds between runs while confirming."""


def inconclusive_cause(result: ProbeResult, stalled_s: float, timeout: float) -> Cause | None:
    """Why ``result`` says nothing about its target, or None when it is conclusive."""
    if result.reason is Reason.LOCAL_RESOURCES:
        return LOCAL  # forewarn's own shortage, whatever the target would have said
    return None if conclusive(result, stalled_s, timeout) else STALL


# Why 0.75: the first round squeezes every check's first run into three quarters of an
# interval, 4/3 of the steady probe rate, so the picture is complete a quarter-interval sooner
# (at 10,000 checks every 10 s: all in by 7.5 s, which leaves start-up's own cost room to finish
# within the interval). A smaller share would finish sooner still but pile more probes onto
# a start-up that is busy already; 4/3 of the rate, for less than an interval, is a modest
# extra. The second run comes at most 1.25 intervals after the first (see ``next_due``).
FIRST_ROUND_SHARE = 0.75
BATCH_S = 0.01


def phase_offset(check_id: str, interval: float) -> float:
    """A stable offset in [0, interval) so checks spread out, the same on every restart.

    Offsets are whole multiples of ``BATCH_S``: checks due in the same slot start on one
    wake-up of the loop instead of one each, and none of them later than it is due. At 1,000
    probes/s that is ten per wake-up instead of one, and the daemon's CPU per probe fell from
    0.29 to 0.16 ms (docs/performance.md): a wake-up, not a probe, was most of the cost.
    """
    slots = math.floor(zlib.crc32(check_id.encode()) / 2**32 * interval / BATCH_S)
    return slots * BATCH_S


def first_run(added: float, offset: float) -> float:
    """When a check added at ``added`` with ``phase_offset`` ``offset`` runs first: early."""
    return added + offset * FIRST_ROUND_SHARE


def next_on_grid(anchor: float, interval: float, now: float) -> float:
    """The first slot ``anchor + k * interval`` strictly after ``now``: late runs never drift."""
    if now < anchor:
        return anchor
    return anchor + (math.floor((now - anchor) / interval) + 1) * interval


def next_due(
    anchor: float, check: Schedulable, now: float, confirming: bool, inconclusive: bool = False
) -> float:
    """After a run: ``retry_interval`` while confirming, else the grid (sooner if inconclusive).

    A run before the anchor (a new check's early first run, or its retries) stands for the
    anchor's own run: the next slot is the one after the anchor, never the anchor itself.
    """
    if confirming:
        return now + check.retry_interval
    slot = next_on_grid(anchor, check.interval, max(now, anchor))
    return min(slot, now + check.retry_interval) if inconclusive else slot


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


OnResult = Callable[[ProbeResult], bool | Awaitable[bool]]
"""Called with each result; returns (or resolves to) True while the check confirms a change."""

OnSetAside = Callable[[ProbeResult, Cause], None]
"""Called with each result set aside as inconclusive, and why."""


class Scheduler:
    """Runs every check on its own grid with bounded concurrency; measures its own lateness."""

    def __init__(
        self,
        checks: Iterable[Schedulable],
        probes: Mapping[str, Probe],
        on_result: OnResult,
        metrics: Metrics,
        *,
        max_concurrency: int = 500,
        clock: Callable[[], float] = time.time,
        lag: LagMonitor | None = None,
        on_set_aside: OnSetAside | None = None,
    ) -> None:
        self.probes = probes
        self.lag = lag  # None: no timeout is excused by a stall
        self.on_set_aside = on_set_aside
        self.on_result = on_result
        self.metrics = metrics
        self.clock = clock
        self.slots = asyncio.Semaphore(max_concurrency)
        self.checks: dict[str, Schedulable] = {}
        self.anchors: dict[str, float] = {}
        self.queue: list[tuple[float, str]] = []
        self.tokens: set[str] = set()  # ids queued or in flight: each check has exactly one
        self.running: set[asyncio.Task[None]] = set()
        # The run loop sleeps on a bare future and one timer handle: asyncio.timeout around an
        # Event cost a cancellation and a TimeoutError per probe (9 % of the daemon's CPU).
        self.waiter: asyncio.Future[None] | None = None
        self.sleeping_until = math.inf  # monotonic; a check due earlier must wake the loop
        self.last_progress = time.monotonic()
        self.set_checks(checks)

    def set_checks(self, checks: Iterable[Schedulable]) -> None:
        """Adopt a new set of checks: unchanged ones keep their grid, new ones are spread.

        A new check's first run comes early (``first_run``); its grid is anchored at the full
        ``phase_offset``.
        """
        now = time.monotonic()
        self.checks = {check.id: check for check in checks}
        for check_id in list(self.anchors):
            if check_id not in self.checks:
                del self.anchors[check_id]
        for check in self.checks.values():
            due = self.anchors.get(check.id)
            if due is None:
                offset = phase_offset(check.id, check.interval)
                self.anchors[check.id] = now + offset
                due = first_run(now, offset)
            if check.id not in self.tokens:
                self.tokens.add(check.id)
                heapq.heappush(self.queue, (due, check.id))
        self.wake()

    async def run(self) -> None:
        """Probe forever (until cancelled), each check when it is due."""
        try:
            while True:
                self.last_progress = time.monotonic()
                if not self.queue:
                    await self._wait(1.0)
                    continue
                due, check_id = self.queue[0]
                delay = due - time.monotonic()
                if delay > 0:
                    await self._wait(min(delay, 1.0))  # wake each second: progress for watchdogs
                    continue
                heapq.heappop(self.queue)
                check = self.checks.get(check_id)
                if check is None:
                    self.tokens.discard(check_id)  # removed by a reload
                    continue
                await self.slots.acquire()
                self.record_lateness(max(0.0, time.monotonic() - due))
                task = asyncio.create_task(self._probe(check))
                self.running.add(task)
                task.add_done_callback(self.running.discard)
        finally:
            for task in self.running:
                task.cancel()
            await asyncio.gather(*self.running, return_exceptions=True)

    async def _wait(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        self.sleeping_until = time.monotonic() + delay
        timer = loop.call_later(delay, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter, self.sleeping_until = None, math.inf

    def wake(self) -> None:
        """Make the run loop look at the queue again now."""
        if self.waiter is not None:
            _resolve(self.waiter)

    async def _probe(self, check: Schedulable) -> None:
        confirming = inconclusive = False
        try:
            try:
                started = time.monotonic()
                result = await self.probes[check.type].run(check, self.clock())
            finally:
                self.slots.release()  # judging may wait on another process: free the slot first
            stalled = 0.0
            if self.lag is not None and not result.ok:
                stalled = self.lag.stalled(started, time.monotonic(), check.timeout)
            cause = inconclusive_cause(result, stalled, check.timeout)
            inconclusive = cause is not None
            if cause is not None:
                self._set_aside(result, stalled, cause)
            else:
                verdict = self.on_result(result)
                confirming = await verdict if inspect.isawaitable(verdict) else verdict
        except Exception:
            # A probe must never raise; if one does, log the bug and keep the check scheduled.
            log.exception("probe_bug", check=check.id)
        current = self.checks.get(check.id)  # a reload may have changed or removed it meanwhile
        if current is None:
            self.tokens.discard(check.id)
            return
        now = time.monotonic()
        due = next_due(self.anchors[check.id], current, now, confirming, inconclusive)
        heapq.heappush(self.queue, (due, check.id))
        if due < self.sleeping_until:  # usually due an interval later: the loop sleeps on
            self.wake()

    def _set_aside(self, result: ProbeResult, stalled: float, cause: Cause) -> None:
        """Count an inconclusive result; it is neither judged nor stored."""
        if result.check_id not in self.checks:
            return  # removed by a reload while in flight: its series are gone, keep them so
        self.count_inconclusive(result, cause)
        if cause == STALL:  # a shortage is logged once per episode, by on_set_aside
            log.info(
                "probe_inconclusive",
                check=result.check_id,
                reason=result.reason,
                detail=result.detail,
                stalled_s=round(stalled, 3),
                duration_s=round(result.duration_s, 4),
            )

    def record_lateness(self, seconds: float) -> None:
        """Note how late a probe starts after its due time."""
        self.metrics.scheduler_lag.observe(seconds)

    def count_inconclusive(self, result: ProbeResult, cause: Cause) -> None:
        """Count a result set aside as inconclusive, and pass it on."""
        self.metrics.probe_inconclusive.labels(result.check_id, cause).inc()
        if self.on_set_aside is not None:
            self.on_set_aside(result, cause)
