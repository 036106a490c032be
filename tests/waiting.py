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
