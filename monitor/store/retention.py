"""Retention: raw results and old aggregates deleted in short chunks the event loop outlives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from monitor.domain.availability import DAY_KEEP_S, MINUTE_KEEP_S
from monitor.store.base import Store, StoreUnavailable, WriteFailures

log = structlog.get_logger("forewarn.retention")

CHUNK = 2000  # rows per transaction: a few milliseconds of holding the event loop
FIRST_RUN_AFTER_S = 60.0  # let a starting daemon bind and probe before the first run
# How often the write-ahead log is folded in and truncated besides SQLite's own checkpoints
# (which wait for 1000 pages): a few milliseconds of the event loop, and a quiet daemon's
# -wal file goes back to empty.
CHECKPOINT_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention run deleted and how long it held the event loop."""

    rows: int
    chunks: int
    duration_ms: float
    longest_chunk_ms: float


async def prune_in_chunks(
    store: Store, now: float, retention: float, *, chunk: int = CHUNK
) -> Pruned:
    """Delete what is due at ``now`` chunk by chunk, yielding to the event loop in between."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    # Aggregates never go before the raw results they sum, whatever the retention.
    minutes_before = now - max(MINUTE_KEEP_S, retention)
    days_before = now - max(DAY_KEEP_S, retention)
    rows = chunks = 0
    longest = 0.0
    started = time.perf_counter()
    while True:
        chunk_started = time.perf_counter()
        deleted = store.prune(
            now - retention, chunk, minutes_before=minutes_before, days_before=days_before
        )
        longest = max(longest, time.perf_counter() - chunk_started)
        rows += deleted
        chunks += 1
        if deleted < chunk:
            break
        # One turn of the loop between chunks: probes, deliveries and HTTP requests that
        # became ready while a chunk ran go before the next one.
        await asyncio.sleep(0)
    return Pruned(rows, chunks, (time.perf_counter() - started) * 1000, longest * 1000)


async def prune_history(store: Store, now: float, retention: float, *, chunk: int = CHUNK) -> int:
    """Delete raw results older than ``retention`` (and expired aggregates); rows deleted."""
    run = await prune_in_chunks(store, now, retention, chunk=chunk)
    log.info(
        "pruned",
        rows=run.rows,
        chunks=run.chunks,
        duration_ms=round(run.duration_ms, 1),
        longest_chunk_ms=round(run.longest_chunk_ms, 1),
    )
    return run.rows


async def retention_loop(
    store: Store,
    retention: float,
    clock: Callable[[], float],
    every: float = 3600.0,
    *,
    first_after: float = FIRST_RUN_AFTER_S,
    checkpoint_every: float = CHECKPOINT_EVERY_S,
) -> None:
    """Prune shortly after start, then every ``every`` seconds; checkpoint the store's log
    every ``checkpoint_every`` seconds (and after each prune). A failed run is only logged.

    Both timers run on the event loop's monotonic clock: a wall-clock step moves neither.
    """
    loop = asyncio.get_running_loop()
    prune_at = loop.time() + first_after
    checkpoint_at = loop.time() + checkpoint_every
    checkpoints = WriteFailures()
    while True:
        await asyncio.sleep(max(0.0, min(prune_at, checkpoint_at) - loop.time()))
        if loop.time() >= prune_at:
            try:
                await prune_history(store, clock(), retention)
            except StoreUnavailable as exc:  # the database away: said, no traceback needed
                log.warning("prune_failed", error=str(exc))
            except Exception as exc:
                # A locked or full disk must not stop the daemon: the next run catches up.
                log.exception("prune_failed", error=str(exc))
            prune_at = loop.time() + every
            checkpoint_at = loop.time()  # pruning fills the log: fold it in now
        if loop.time() >= checkpoint_at:
            try:
                store.checkpoint()
            except Exception as exc:
                checkpoints.failed("checkpoint", exc)
            else:
                checkpoints.succeeded("checkpoint")
            checkpoint_at = loop.time() + checkpoint_every
