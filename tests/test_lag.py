"""When forewarn itself is behind: stall arithmetic, the inconclusive rule and episodes as
tables, and the monitor on a real event loop."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
import structlog

from monitor.probes.base import ProbeResult, Reason
from monitor.runtime.lag import (
    Episode,
    LagMonitor,
    Stall,
    conclusive,
    loop_factory,
    loop_name,
    stalled_time,
    track,
)
from monitor.runtime.metrics import Metrics
from tests.waiting import until


def failed(reason: Reason | None, duration: float = 2.3) -> ProbeResult:
    """A result with the given failure reason (None: a success) that took ``duration``."""
    return ProbeResult.judged("c", 0.0, reason, "" if reason is None else "detail", duration)


@pytest.mark.parametrize(
    ("reason", "duration", "stalled", "expected"),
    [
        (None, 2.3, 5.0, True),  # an answer is an answer, however stalled the daemon was
        (Reason.TIMEOUT, 2.0, 0.0, True),  # a healthy loop: the target's timeout stands
        (Reason.TIMEOUT, 2.0, 0.49, True),  # just under a quarter of the 2 s timeout
        (Reason.TIMEOUT, 2.5, 0.5, False),  # a quarter of the budget lost to the daemon itself
        (Reason.CONNECT_TIMEOUT, 3.5, 1.5, False),
        (Reason.CONNECT_REFUSED, 1.0, 2.0, True),  # real failures are never excused
        (Reason.HTTP_STATUS, 2.3, 2.0, True),
        (Reason.BODY_MISMATCH, 2.3, 2.0, True),
        (Reason.TLS, 2.3, 2.0, True),
        (Reason.DNS, 0.3, 2.0, True),  # a resolver's error came back: it is an answer
        (Reason.DNS, 2.6, 1.0, False),  # the deadline caught the probe resolving
        (Reason.DNS, 2.0, 0.1, True),  # ... while the daemon kept up: believed
    ],
)
def test_only_runs_cut_by_the_deadline_during_a_stall_are_inconclusive(
    reason: Reason | None, duration: float, stalled: float, expected: bool
) -> None:
    """A timeout is inconclusive when ≥ 25 % of its 2 s budget was lost to our stalls."""
    assert conclusive(failed(reason, duration), stalled, timeout=2.0) is expected


@pytest.mark.parametrize(
    ("stalls", "expected"),
    [
        ([], 0.0),
        ([Stall(11.0, 11.3)], 0.3),  # inside the run
        ([Stall(9.0, 10.2)], 0.2),  # began before the run: only its overlap counts
        ([Stall(11.8, 13.0)], 0.2),  # ends after the run
        ([Stall(11.0, 11.4), Stall(11.2, 11.5, "gc")], 0.5),  # overlaps counted once
        ([Stall(11.0, 11.1), Stall(11.5, 11.6)], 0.2),  # separate stalls add up
        ([Stall(11.0, 11.04)], 0.0),  # below the floor: noise for this probe
        ([Stall(8.0, 9.0), Stall(12.5, 13.0)], 0.0),  # before and after the run
    ],
)
def test_stalled_time_is_the_covered_part_of_the_run(stalls: list[Stall], expected: float) -> None:
    """Stalls of at least the floor count for the part of the run [10, 12] they cover."""
    assert stalled_time(stalls, 10.0, 12.0, floor=0.05) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(0.01, 0.0), (0.01, 1.0)], [None, None]),  # a healthy loop: nothing to say
        # one episode for a run of stalls, however many ticks are over the threshold
        ([(0.3, 0.0), (0.4, 0.1), (0.3, 0.2), (0.01, 5.0)], ["began", None, None, None]),
        # it ends only after QUIET seconds without a big stall
        ([(0.3, 0.0), (0.01, 9.9), (0.01, 10.0)], ["began", None, "ended"]),
        ([(0.3, 0.0), (0.3, 9.0), (0.01, 10.5), (0.01, 19.0)], ["began", None, None, "ended"]),
        # a new stall after the end is a new episode
        ([(0.3, 0.0), (0.01, 10.0), (0.5, 11.0)], ["began", "ended", "began"]),
    ],
)
def test_episodes_are_logged_once_at_each_end(
    steps: list[tuple[float, float]], expected: list[str | None]
) -> None:
    """With a 0.25 s threshold and 10 s of quiet, a lag episode begins once and ends once."""
    episode: Episode | None = None
    seen = []
    for lag, now in steps:
        episode, change = track(episode, lag, now, behind_s=0.25, quiet_s=10.0)
        seen.append(change)
    assert seen == expected


def test_an_episode_keeps_its_worst_lag() -> None:
    """The episode remembers its start, its worst lag and how many lags were over."""
    episode, _ = track(None, 0.3, 1.0, 0.25, 10.0)
    episode, _ = track(episode, 0.9, 2.0, 0.25, 10.0)
    episode, _ = track(episode, 0.4, 3.0, 0.25, 10.0)
    assert episode == Episode(since=1.0, worst=0.9, last_over=3.0, stalls=3)


def busy(seconds: float) -> None:
    """Keep the event loop's thread busy, the way a CPU-bound burst would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_monitor_measures_a_blocked_loop_and_logs_the_episode_once() -> None:
    """Two 80 ms blocks show as stalls, in the lag histogram, and as one ``loop_lag`` event."""
    metrics = Metrics()
    monitor = LagMonitor(metrics, period=0.01, behind_s=0.05)
    task = asyncio.create_task(monitor.run())
    with structlog.testing.capture_logs() as logs:
        await until(lambda: monitor.due is not None)
        started = time.monotonic()
        busy(0.08)
        # Judged in the same turn as the block ended: the overdue sampler still counts it.
        assert monitor.stalled(started, time.monotonic(), timeout=0.2) >= 0.06
        await asyncio.sleep(0.03)
        busy(0.08)
        await asyncio.sleep(0.03)
        ended = time.monotonic()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 0.12 <= monitor.stalled(started, ended, timeout=0.2) <= ended - started
    assert monitor.recent_worst() >= 0.06
    assert monitor.worst >= 0.06
    assert [e["event"] for e in logs if e["event"].startswith("loop_lag")] == ["loop_lag"]
    over = metrics.registry.get_sample_value(
        "forewarn_event_loop_lag_seconds_bucket", {"le": "0.05"}
    )
    count = metrics.registry.get_sample_value("forewarn_event_loop_lag_seconds_count")
    assert count is not None and over is not None and count - over >= 2  # two lags > 50 ms


async def test_monitor_times_collections_and_unhooks_when_stopped() -> None:
    """A collection while the monitor runs is timed; cancelling it removes the GC hook."""
    metrics = Metrics()
    monitor = LagMonitor(metrics)
    task = asyncio.create_task(monitor.run())
    await until(lambda: monitor.due is not None)
    hooks = len(gc.callbacks)
    gc.collect()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert metrics.registry.get_sample_value("forewarn_gc_pause_seconds_count", {"generation": "2"})
    assert len(gc.callbacks) == hooks - 1
    assert monitor.due is None  # a stopped monitor reports no overdue stall


def test_the_loop_is_asyncio_unless_uvloop_is_installed() -> None:
    """``forewarn run`` uses uvloop only when importable, and the loop names itself."""
    factory = loop_factory()
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert factory is None
    else:
        assert factory is not None
        loop = factory()
        try:
            assert loop.run_until_complete(_name()) == "uvloop"
        finally:
            loop.close()
    assert asyncio.run(_name()) == "asyncio"


async def _name() -> str:
    return loop_name()
