"""Is forewarn itself behind? Loop lag and GC pauses, and which timeouts they make inconclusive."""

from __future__ import annotations

import asyncio
import gc
import importlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

import structlog

from monitor.probes.base import ProbeResult, Reason
from monitor.runtime.metrics import Metrics

log = structlog.get_logger("forewarn.lag")

PERIOD_S = 0.05  # the sampler's sleep: 20 wake-ups a second cost nothing and see 50 ms stalls
BEHIND_S = 0.25  # a healthy loop lags ~1 ms; 250 ms is trouble, yet well below usual timeouts
QUIET_S = 10.0  # an episode (and /healthz "degraded") ends this long after the last big stall
STALL_FLOOR_S = 0.005  # shorter stalls are the loop's ordinary jitter: not even recorded
MAX_STALLS = 4096  # at most ~20 recorded a second: minutes of history, in bounded memory

# A timeout may be the daemon's own fault, not the target's, when the daemon was stalled for
# at least this share of the probe's timeout while it ran. Shorter stalls can only tip over a
# target already spending three quarters of its budget, which is not a healthy one; longer
# ones may have cost a healthy target its answer.
INCONCLUSIVE_SHARE = 0.25
# Stalls shorter than this share of the timeout are left out of the sum: a probe waits on the
# loop at about five points (connect, TLS, send, headers, body), so even one such stall at each
# delays it by at most the share above, whereas summing them would excuse real timeouts of
# long-timeout checks whenever the loop is merely busy.
NOISE_SHARE = 0.05
TIMEOUT_REASONS = frozenset({Reason.TIMEOUT, Reason.CONNECT_TIMEOUT})
# The http, tcp and tls probes name a deadline that caught them resolving ``dns``, like a
# resolver's error; only a run that lasted its whole budget was stopped by the deadline.
DEADLINE_SHARE = 0.95

Cause = Literal["loop", "gc"]
Change = Literal["began", "ended"]


@dataclass(frozen=True, slots=True)
class Stall:
    """A span of monotonic time during which the event loop could not run callbacks."""

    start: float
    end: float
    cause: Cause = "loop"

    @property
    def length(self) -> float:
        """How long the stall lasted, in seconds."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Episode:
    """A stretch of time during which the daemon was behind: logged once, when it begins."""

    since: float
    worst: float
    last_over: float  # when a lag above the threshold was last seen
    stalls: int = 1  # lags above the threshold seen during the episode


def stalled_time(stalls: Iterable[Stall], start: float, end: float, floor: float) -> float:
    """Seconds of ``[start, end]`` covered by stalls at least ``floor`` long, overlaps once."""
    spans = sorted(
        (max(s.start, start), min(s.end, end))
        for s in stalls
        if s.length >= floor and s.end > start and s.start < end
    )
    total, reach = 0.0, start
    for low, high in spans:
        low = max(low, reach)
        if high > low:
            total += high - low
            reach = high
    return total


def out_of_time(result: ProbeResult, timeout: float) -> bool:
    """True when the probe's deadline, not an answer or an error, is what ended it."""
    if result.reason in TIMEOUT_REASONS:
        return True
    return result.reason is Reason.DNS and result.duration_s >= DEADLINE_SHARE * timeout


def conclusive(result: ProbeResult, stalled_s: float, timeout: float) -> bool:
    """False for a timeout during which the daemon itself stalled for a share of the budget."""
    if result.ok or not out_of_time(result, timeout):
        return True  # an answer, even a wrong one, or a refusal, is the target's own doing
    return stalled_s < INCONCLUSIVE_SHARE * timeout


def track(
    episode: Episode | None, lag: float, now: float, behind_s: float, quiet_s: float
) -> tuple[Episode | None, Change | None]:
    """Fold one lag measurement into the current episode; say when one begins or ends."""
    if lag >= behind_s:
        if episode is None:
            return Episode(since=now, worst=lag, last_over=now), "began"
        worse = max(episode.worst, lag)
        return replace(episode, worst=worse, last_over=now, stalls=episode.stalls + 1), None
    if episode is not None and now - episode.last_over >= quiet_s:
        return None, "ended"
    return episode, None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the ``fast`` extra is installed, else None (asyncio's own)."""
    try:
        uvloop = importlib.import_module("uvloop")  # optional: no hard import for mypy or pip
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """Which event loop implementation runs this coroutine: ``asyncio`` or ``uvloop``."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


class LagMonitor:
    """Wakes every ``period`` to measure how late the loop runs it; hooks GC to time pauses."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        period: float = PERIOD_S,
        behind_s: float = BEHIND_S,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.metrics = metrics
        self.period, self.behind_s, self.quiet_s = period, behind_s, quiet_s
        self.stalls: deque[Stall] = deque(maxlen=MAX_STALLS)  # oldest first, by end
        self.due: float | None = None  # when the sampler should wake next; None: not running
        self.episode: Episode | None = None
        self.worst = 0.0  # the longest stall since start, for benchmarks
        # GC may run in any thread, in the middle of any bytecode: its callback only appends
        # here, and the loop moves these into ``stalls`` before it reads them.
        self._gc_pending: list[Stall] = []
        self._gc_started = 0.0

    async def run(self) -> None:
        """Measure until cancelled."""
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                self.due = time.monotonic() + self.period
                await asyncio.sleep(self.period)
                gc_worst = max((s.length for s in self._absorb_gc()), default=0.0)
                now = time.monotonic()
                lag = max(0.0, now - self.due)
                self.metrics.event_loop_lag.observe(lag)
                if lag >= STALL_FLOOR_S:
                    self.stalls.append(Stall(self.due, now))
                self._note(max(lag, gc_worst), "gc" if gc_worst > lag else "loop", now)
        finally:
            self.due = None
            gc.callbacks.remove(self._on_gc)

    def stalled(self, start: float, end: float, timeout: float) -> float:
        """Seconds the loop was stalled during ``[start, end]``, counting stalls that matter."""
        return stalled_time(self._since(start, end), start, end, NOISE_SHARE * timeout)

    def recent_worst(self) -> float:
        """The longest stall that ended within the last ``quiet_s``, or is still going on."""
        now = time.monotonic()
        return max((s.length for s in self._since(now - self.quiet_s, now)), default=0.0)

    def _since(self, start: float, now: float) -> list[Stall]:
        """Recorded stalls that ended after ``start``, and the one going on at ``now``, if any."""
        self._absorb_gc()
        found: list[Stall] = []
        for stall in reversed(self.stalls):
            if stall.end <= start:
                break
            found.append(stall)
        # The sampler may be overdue right now: a result can be judged in the very loop turn
        # that ends a stall, before the sampler's own wake-up had a chance to record it.
        if self.due is not None and now > self.due:
            found.append(Stall(self.due, now))
        return found

    def _absorb_gc(self) -> list[Stall]:
        """Move the GC pauses recorded by the callback into ``stalls``; return them."""
        pending, self._gc_pending = self._gc_pending, []
        self.stalls.extend(pending)
        return pending

    def _note(self, lag: float, cause: Cause, now: float) -> None:
        """Keep the worst lag, and log once when an episode begins and once when it ends."""
        self.worst = max(self.worst, lag)
        before = self.episode
        self.episode, change = track(before, lag, now, self.behind_s, self.quiet_s)
        if change == "began":
            log.warning("loop_lag", lag_s=round(lag, 3), cause=cause, threshold_s=self.behind_s)
        elif change == "ended" and before is not None:
            log.info(
                "loop_lag_ended",
                worst_s=round(before.worst, 3),
                lasted_s=round(before.last_over - before.since, 3),
                stalls=before.stalls,
            )

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """gc.callbacks hook: time each collection."""
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
            return
        pause = now - self._gc_started
        self.metrics.gc_pause.labels(str(info.get("generation", ""))).observe(pause)
        if pause >= STALL_FLOOR_S:
            self._gc_pending.append(Stall(self._gc_started, now, "gc"))
