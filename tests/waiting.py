"""Polling helpers for tests that watch a running daemon: no fixed sleeps, bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

POLL_S = 0.02


async def until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` every 20 ms until true, failing the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(POLL_S)


async def holds(condition: Callable[[], object], for_s: float) -> None:
    """Check ``condition`` every 20 ms for ``for_s`` seconds; fail as soon as it is false."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        assert condition(), "condition stopped holding"
        await asyncio.sleep(POLL_S)


class LoopLateness:
    """How long the event loop stood still while a test ran: the baseline for a timing bound.

    A bound such as "starts within 100 ms" fails on a busy machine through no fault of the
    code: the process did not get the CPU. Inside ``async with LoopLateness() as lateness``, a
    ticker on the same loop wakes every ``period`` and notes how late it woke; ``worst`` is
    the latest wake-up plus one period (a shorter stall can fall between two wake-ups). A test
    adds it to its own slack, so the bound is as tight as written on an idle machine and
    loosened only by what the machine measurably cost. A wait for the wrong deadline, a task
    queued behind another or a lock held too long leave the loop free and cannot hide in it;
    work that blocks the loop can, so a test whose failure would be such work bounds its CPU
    time (``time.process_time``) as well.
    """

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.latest = 0.0  # the latest wake-up seen
        self._ticker: asyncio.Task[None] | None = None

    @property
    def worst(self) -> float:
        """The longest the loop may have stood still: the latest wake-up, plus one period."""
        return self.latest + self.period

    async def __aenter__(self) -> LoopLateness:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._ticker is not None
        self._ticker.cancel()
        await asyncio.gather(self._ticker, return_exceptions=True)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.period
            await asyncio.sleep(self.period)
            self.latest = max(self.latest, loop.time() - due)
