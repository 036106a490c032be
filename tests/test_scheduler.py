"""Scheduling maths as tables, and the loop against a real HTTP target."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.probes.base import ProbeResult
from monitor.probes.http import HttpCheck, HttpProbe
from monitor.runtime.metrics import Metrics
from monitor.runtime.scheduler import (
    BATCH_S,
    FIRST_ROUND_SHARE,
    Scheduler,
    first_run,
    next_due,
    next_on_grid,
    phase_offset,
)
from tests.waiting import LoopLateness


def check(check_id: str, interval: float = 10.0, retry: float = 1.0, url: str = "") -> HttpCheck:
    """An http check with the given timing."""
    return HttpCheck.model_validate(
        {
            "id": check_id,
            "service": "s",
            "type": "http",
            "url": url or "http://127.0.0.1:9/",
            "interval": interval,
            "timeout": 1.0,
            "retry_interval": retry,
            "failure_threshold": 3,
            "success_threshold": 2,
        }
    )


def test_phase_offset_is_stable_and_within_interval() -> None:
    """The first-run offset depends only on the id and stays inside the interval."""
    offsets = [phase_offset(f"check-{i}", 30.0) for i in range(1000)]
    assert offsets == [phase_offset(f"check-{i}", 30.0) for i in range(1000)]
    assert all(0 <= o < 30.0 for o in offsets)
    # spread: every tenth of the interval holds some checks
    assert {int(o // 3) for o in offsets} == set(range(10))


def test_checks_due_in_the_same_slot_share_one_wake_up() -> None:
    """Offsets are whole slots, so 10,000 checks every 10 s are due at most 1,000 times."""
    offsets = [phase_offset(f"check-{i}", 10.0) for i in range(10_000)]
    assert all(abs(o / BATCH_S - round(o / BATCH_S)) < 1e-6 for o in offsets)
    distinct = len(set(offsets))
    assert 900 <= distinct <= 10.0 / BATCH_S  # nearly every slot used; one wake-up each


@pytest.mark.parametrize(
    ("anchor", "interval", "now", "expected"),
    [
        (100.0, 10.0, 90.0, 100.0),  # before the first slot: the first slot
        (100.0, 10.0, 100.0, 110.0),  # exactly on a slot: the next one
        (100.0, 10.0, 103.5, 110.0),  # a late run does not push the grid
        (100.0, 10.0, 137.0, 140.0),  # missed slots are skipped, not bunched
    ],
)
def test_grid_never_drifts(anchor: float, interval: float, now: float, expected: float) -> None:
    """Next slots stay on ``anchor + k * interval`` however late a run was."""
    assert next_on_grid(anchor, interval, now) == expected


def test_confirming_uses_retry_interval_then_returns_to_grid() -> None:
    """While confirming, the retry interval applies; afterwards the original grid resumes."""
    c = check("c", interval=10.0, retry=1.0)
    assert next_due(100.0, c, 123.0, confirming=True) == 124.0
    assert next_due(100.0, c, 124.2, confirming=False) == 130.0


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0.0, 100.0),  # a check whose anchor is the start itself runs at once
        (4.0, 103.0),  # three quarters of the way to its anchor at 104
        (8.0, 106.0),
        (9.96, 107.47),  # the last of a 10 s interval: in by 7.5 s, not 10 s
    ],
)
def test_a_new_check_runs_first_before_its_anchor(offset: float, expected: float) -> None:
    """A check added at 100 first runs at FIRST_ROUND_SHARE of its phase offset, not at it."""
    assert first_run(100.0, offset) == pytest.approx(expected)
    assert first_run(100.0, offset) <= 100.0 + offset


@pytest.mark.parametrize(
    ("now", "confirming", "inconclusive", "expected"),
    [
        # The anchor is 108, the interval 10; an early first run started at 106 (8 * 0.75).
        (106.05, False, False, 118.0),  # after an early first run: the slot after the anchor
        (108.0, False, False, 118.0),  # ended exactly at the anchor: the same slot
        (108.3, False, False, 118.0),  # a slow early run, ended past the anchor: still 118
        (106.05, True, False, 107.05),  # confirming: retry_interval, as always
        (107.05, False, False, 118.0),  # confirmed before the anchor: back on the grid, at 118
        (106.05, False, True, 107.05),  # inconclusive: retried soon, as always
        (117.5, False, True, 118.0),  # but never later than its slot
        (108.4, False, False, 118.0),  # a late first run (after the anchor): the grid as before
        (121.0, False, False, 128.0),  # very late: missed slots skipped, as before
    ],
)
def test_the_run_after_an_early_first_run_is_the_slot_after_the_anchor(
    now: float, confirming: bool, inconclusive: bool, expected: float
) -> None:
    """A run ending before the anchor stands for the anchor's run; retries are unchanged."""
    c = check("c", interval=10.0, retry=1.0)
    assert next_due(108.0, c, now, confirming, inconclusive) == pytest.approx(expected)


async def test_the_first_round_completes_early_and_no_check_runs_twice_in_an_interval() -> None:
    """Against a real target, every check runs once within 3/4 interval, then on its grid."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    interval, count = 0.8, 40
    app = web.Application()
    app.router.add_get("/", ok)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/"))
        checks = [check(f"c{i}", interval=interval, url=url) for i in range(count)]
        starts: dict[str, list[float]] = {c.id: [] for c in checks}
        enough = asyncio.Event()

        def record(result: ProbeResult) -> bool:
            starts[result.check_id].append(result.at)
            if all(len(runs) >= 2 for runs in starts.values()):
                enough.set()
            return False

        probe = HttpProbe()
        async with LoopLateness() as lateness:
            # clock=time.monotonic: result.at is when each run started, on the grid's clock
            scheduler = Scheduler(checks, {"http": probe}, record, Metrics(), clock=time.monotonic)
            task = asyncio.create_task(scheduler.run())
            await asyncio.wait_for(enough.wait(), 30)  # only against a hang
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await probe.close()
    added = {c.id: scheduler.anchors[c.id] - phase_offset(c.id, interval) for c in checks}
    assert max(added.values()) - min(added.values()) < 1e-6  # one set_checks: one start
    start = min(added.values())
    # How late a run may start: 50 ms on an idle machine, plus what a busy one stalled the loop.
    late = 0.05 + lateness.worst
    first = {check_id: runs[0] - start for check_id, runs in starts.items()}
    # The old first round put the last check near the full interval (0.8 s); now 0.6 s.
    assert max(first.values()) < interval * FIRST_ROUND_SHARE + late, first
    assert max(first.values()) > interval * FIRST_ROUND_SHARE / 2  # spread, not all at once
    for check_id, runs in starts.items():
        offset = phase_offset(check_id, interval)
        assert -0.01 <= first[check_id] - offset * FIRST_ROUND_SHARE < late, check_id
        # The second run is the slot after the anchor: a full interval or more after the first
        # (less only by how late the first one started), never the anchor a moment later.
        assert runs[1] - runs[0] > interval - late, (check_id, runs)
        assert -0.01 <= runs[1] - (start + offset + interval) < late, (check_id, runs)


async def test_loop_runs_each_check_on_its_interval_and_measures_lag() -> None:
    """Against a real target, each check runs about once per interval, lag is recorded."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/"))
        checks = [check(f"c{i}", interval=0.1, url=url) for i in range(3)]
        seen: list[ProbeResult] = []
        enough = asyncio.Event()

        def record(result: ProbeResult) -> bool:
            seen.append(result)
            if len(seen) >= 12:
                enough.set()
            return False

        metrics = Metrics()
        probe = HttpProbe()
        scheduler = Scheduler(checks, {"http": probe}, record, metrics)
        async with LoopLateness() as lateness:
            task = asyncio.create_task(scheduler.run())
            started = time.monotonic()
            await asyncio.wait_for(enough.wait(), 30)  # only against a hang
            elapsed = time.monotonic() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await probe.close()
    assert all(r.ok for r in seen)
    assert {r.check_id for r in seen} == {"c0", "c1", "c2"}
    assert len(seen) >= 12
    # 3 checks every 100 ms: 12 results need about 0.4 s, never much less; more only by what
    # a busy machine delayed each of a check's 4 runs. Pacing at 1 s (the retry_interval, or
    # the scheduler's idle wake-up) would take 3 s.
    assert 0.25 < elapsed < 2 + 4 * lateness.worst
    assert metrics.registry.get_sample_value("forewarn_scheduler_lag_seconds_count") >= 12


async def test_reload_keeps_unchanged_checks_and_drops_removed_ones() -> None:
    """set_checks keeps each surviving check's grid, adds new ones once, forgets removed ones."""
    a, b = check("a"), check("b")
    scheduler = Scheduler([a, b], {}, lambda r: False, Metrics())
    anchor_a = scheduler.anchors["a"]
    scheduler.set_checks([a, check("c")])
    assert scheduler.anchors["a"] == anchor_a
    assert set(scheduler.anchors) == {"a", "c"}
    assert sorted(check_id for _, check_id in scheduler.queue) == ["a", "b", "c"]
    scheduler.set_checks([a, check("c")])
    assert len(scheduler.queue) == 3  # no duplicate entries for checks already queued


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (123.0, 124.0),  # retry_interval after the run, like a confirmation
        (129.5, 130.0),  # but never later than the slot it would have had anyway
    ],
)
def test_an_inconclusive_run_is_retried_soon(now: float, expected: float) -> None:
    """A run set aside as inconclusive is re-run after retry_interval or at its slot if sooner."""
    c = check("c", interval=10.0, retry=1.0)
    assert next_due(100.0, c, now, confirming=False, inconclusive=True) == expected
