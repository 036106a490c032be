"""Probe worker processes, seen from the daemon: shard the checks, fold their results in.

One Python process runs one event loop on one core. With many checks, probing moves to worker
processes (``monitor.runtime.worker``, forked by ``monitor.runtime.forkserver``), each running the
checks whose id hashes to it, handed over in their slim form (``wire.slim``); results come
back here, where the detector, the store and the dispatcher live. Heartbeat checks stay in the
daemon: their pings arrive at its web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import structlog

from monitor.core.fields import CheckBase
from monitor.probes.base import ProbeResult
from monitor.probes.http import HttpCheck
from monitor.runtime import wire
from monitor.runtime.forkserver import Child, ForkServer, trim_heap
from monitor.runtime.metrics import Metrics
from monitor.runtime.wire import Planned

log = structlog.get_logger("forewarn.workers")

LOCAL_KINDS = frozenset({"heartbeat"})  # read state that only the daemon process holds
AUTO_FROM_RATE = 200.0  # probes/s below which one loop is plenty and workers only cost memory
RESTART_AFTER_S = 1.0  # a worker that died is started again after this pause
STOP_GRACE_S = 5.0  # then a worker that has not exited after stdin closed is killed


def worker_count(
    setting: int | Literal["auto"], checks: Sequence[CheckBase], cores: int | None
) -> int:
    """How many workers to run: ``setting`` when a number, else one a core under real load."""
    if setting != "auto":
        return setting
    rate = sum(1.0 / c.interval for c in checks if c.type not in LOCAL_KINDS)
    cores = cores or 1
    return cores if cores > 1 and rate >= AUTO_FROM_RATE else 0


def split(checks: Sequence[CheckBase], count: int) -> tuple[list[Planned], list[CheckBase]]:
    """The checks the daemon probes itself (http ones as their plans), and its workers'."""
    if count == 0:
        # The scheduler then hands the probe a plan, not a model whose private attribute
        # costs a pydantic __getattr__ on every run.
        return [c.plan() if isinstance(c, HttpCheck) else c for c in checks], []
    local: list[Planned] = [c for c in checks if c.type in LOCAL_KINDS]
    return local, [c for c in checks if c.type not in LOCAL_KINDS]


def shard_of(check_id: str, count: int) -> int:
    """The worker that runs ``check_id``: stable across restarts and reloads."""
    return zlib.crc32(check_id.encode()) % count


@dataclass(frozen=True)
class Settings:
    """What every worker is told besides its checks."""

    timezone: str
    max_concurrency: int  # split evenly between the workers
    log_level: str


class _Worker:
    """One child process and the task reading its reports."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Child | None = None
        self.reading: asyncio.Task[None] | None = None
        self.heard_at = time.monotonic()
        self.loop_lag_s = 0.0

    def send(self, message: wire.Assign | wire.Verdicts) -> None:
        """Write one frame to the worker, if it is running."""
        writer = None if self.process is None else self.process.writer
        if writer is not None and not writer.is_closing():  # closed: stopping, or it died
            writer.write(wire.encode(message))


class ProbeWorkers:
    """Runs ``count`` workers and keeps each one running its shard of the checks."""

    def __init__(
        self,
        count: int,
        settings: Settings,
        on_result: Callable[[ProbeResult], bool],
        metrics: Metrics,
        on_set_aside: Callable[[ProbeResult, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_result = on_result
        self.on_set_aside = on_set_aside  # as the daemon's own scheduler calls it
        self.metrics = metrics
        self.workers = [_Worker(index) for index in range(count)]
        self.shards: list[tuple[CheckBase, ...]] = [() for _ in range(count)]
        self.stopping = False
        self.server = ForkServer()

    async def start(self, checks: Sequence[CheckBase]) -> None:
        """Start the fork server, then every worker from it, and hand each its shard."""
        self._shard(checks)
        if self.workers:
            await asyncio.gather(*(self._spawn(worker) for worker in self.workers))
        trim_heap()  # start-up's garbage (the config's YAML, the hand-over) leaves the RSS

    def set_checks(self, checks: Sequence[CheckBase]) -> None:
        """Adopt new checks (a reload): each worker keeps the grid of checks it already had."""
        self._shard(checks)
        for worker in self.workers:
            worker.send(self._assignment(worker))

    @property
    def last_progress(self) -> float:
        """When the least recently heard worker last reported (monotonic)."""
        return min((w.heard_at for w in self.workers), default=time.monotonic())

    def recent_worst(self) -> float:
        """The worst recent event-loop stall any worker reported."""
        return max((w.loop_lag_s for w in self.workers), default=0.0)

    async def stop(self) -> None:
        """Close every worker's stdin, wait for it to exit, kill it after a grace period."""
        self.stopping = True
        for worker in self.workers:
            if worker.process is not None:
                worker.process.writer.close()
        for worker in self.workers:
            if worker.process is not None:
                try:
                    await asyncio.wait_for(worker.process.wait(), STOP_GRACE_S)
                except TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()
            if worker.reading is not None:
                worker.reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reading
        await self.server.close()

    def _shard(self, checks: Sequence[CheckBase]) -> None:
        shards: list[list[CheckBase]] = [[] for _ in self.workers]
        for check in checks:
            shards[shard_of(check.id, len(self.workers))].append(check)
        self.shards = [tuple(shard) for shard in shards]

    def _assignment(self, worker: _Worker) -> wire.Assign:
        share = max(1, math.ceil(self.settings.max_concurrency / len(self.workers)))
        # Slim forms made for each hand-over, not kept: the daemon holds the config already.
        checks = tuple(wire.slim(check) for check in self.shards[worker.index])
        return wire.Assign(checks, self.settings.timezone, share)

    async def _spawn(self, worker: _Worker) -> None:
        json = not sys.stdout.isatty()
        worker.process = await self.server.spawn(worker.index, self.settings.log_level, json)
        worker.heard_at = time.monotonic()
        worker.send(self._assignment(worker))
        worker.reading = asyncio.create_task(
            self._read(worker, worker.process), name=f"worker-{worker.index}"
        )
        log.info("worker_started", worker=worker.index, pid=worker.process.pid)

    async def _read(self, worker: _Worker, process: Child) -> None:
        """Fold each report in and answer with verdicts; restart the worker if it dies."""
        try:
            while True:
                report = await wire.read(process.reader)
                if isinstance(report, wire.Report):
                    self._fold(worker, report)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if self.stopping:
            return
        code = await process.wait()
        log.error("worker_died", worker=worker.index, exit_code=code)
        process.writer.close()
        await asyncio.sleep(RESTART_AFTER_S)
        if not self.stopping:
            await self._spawn(worker)  # its checks carry on from a fresh grid; no result is lost

    def _fold(self, worker: _Worker, report: wire.Report) -> None:
        worker.heard_at = time.monotonic()
        worker.loop_lag_s = report.loop_lag_s
        for seconds in report.lateness:
            self.metrics.scheduler_lag.observe(seconds)
        for result, cause in report.inconclusive:
            self.metrics.probe_inconclusive.labels(result.check_id, cause).inc()
            if self.on_set_aside is not None:
                self.on_set_aside(result, cause)
        if report.results:
            verdicts = {seq: self._judge(result) for seq, result in report.results}
            worker.send(wire.Verdicts(verdicts))

    def _judge(self, result: ProbeResult) -> bool:
        try:
            return self.on_result(result)
        except Exception:
            # As in the daemon's own scheduler: log the bug, keep the check (and worker) going.
            log.exception("result_bug", check=result.check_id)
            return False
