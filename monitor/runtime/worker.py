"""A probe worker process: its shard of checks on its own event loop, results sent to the daemon.

Forked by ``monitor.runtime.forkserver`` for ``monitor.runtime.workers``. Frames go both ways
on a socket; logs go to stderr. When the daemon closes its end (it stopped or died), the
worker stops too.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import time

import structlog

from monitor.probes import PROBES
from monitor.probes.base import Probe, ProbeContext, ProbeResult
from monitor.probes.heartbeat import HeartbeatBook
from monitor.runtime import wire
from monitor.runtime.forkserver import trim_heap
from monitor.runtime.lag import LagMonitor, loop_factory
from monitor.runtime.logs import configure_logging
from monitor.runtime.metrics import Metrics
from monitor.runtime.scheduler import Cause, Scheduler

log = structlog.get_logger("forewarn.worker")

PULSE_S = 0.5  # an idle worker still reports this often: the daemon's sign of its progress


class WorkerScheduler(Scheduler):
    """A scheduler whose lateness and set-aside counts travel to the daemon with the results."""

    def __init__(self, link: Link, lag: LagMonitor, max_concurrency: int) -> None:
        super().__init__([], {}, link.judge, Metrics(), max_concurrency=max_concurrency, lag=lag)
        self.link = link

    def record_lateness(self, seconds: float) -> None:
        """Queue the lateness for the daemon's histogram."""
        self.link.lateness.append(seconds)
        self.link.soon()

    def count_inconclusive(self, result: ProbeResult, cause: Cause) -> None:
        """Queue the result set aside, and why, for the daemon's counter and episodes."""
        self.link.inconclusive.append((result, cause))
        self.link.soon()


class Link:
    """This worker's end of the pipe: batches reports, waits for the daemon's verdicts."""

    def __init__(self, writer: asyncio.StreamWriter, lag: LagMonitor) -> None:
        self.writer = writer
        self.lag = lag
        self.results: list[tuple[int, ProbeResult]] = []
        self.lateness: list[float] = []
        self.inconclusive: list[tuple[ProbeResult, str]] = []
        self.waiting: dict[int, asyncio.Future[bool]] = {}
        self.sequence = 0
        self.flush_queued = False

    async def judge(self, result: ProbeResult) -> bool:
        """Send ``result`` to the daemon; resolves to whether its check is confirming."""
        self.sequence += 1
        verdict: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting[self.sequence] = verdict
        self.results.append((self.sequence, result))
        self.soon()
        return await verdict

    def soon(self) -> None:
        """Send what this loop turn produced in one frame, once the turn is over."""
        if not self.flush_queued:
            self.flush_queued = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send the pending report (possibly empty: a pulse)."""
        self.flush_queued = False
        if self.writer.is_closing():
            return  # the daemon has gone, or we are stopping: nobody to tell
        lag_s = self.lag.recent_worst()
        report = wire.Report(self.results, self.lateness, self.inconclusive, lag_s)
        self.results, self.lateness, self.inconclusive = [], [], []
        self.writer.write(wire.encode(report))

    def settle(self, verdicts: wire.Verdicts) -> None:
        """Hand each waiting probe task its verdict."""
        for sequence, confirming in verdicts.confirming.items():
            future = self.waiting.pop(sequence, None)
            if future is not None and not future.done():
                future.set_result(confirming)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Run checks as the daemon assigns them, until it closes its end."""
    lag = LagMonitor(Metrics())  # its own histograms stay here; /healthz gets the worst stall
    link = Link(writer, lag)
    tasks = [asyncio.create_task(lag.run()), asyncio.create_task(_pulse(link))]
    scheduler: WorkerScheduler | None = None
    probes: dict[str, Probe] = {}
    try:
        while True:
            message = await wire.read(reader)
            if isinstance(message, wire.Verdicts):
                link.settle(message)
            elif isinstance(message, wire.Assign):
                scheduler = _assign(message, scheduler, link, lag, probes, tasks)

    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the daemon closed its end: stop
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for probe in probes.values():
            await probe.close()


def _assign(
    message: wire.Assign,
    scheduler: WorkerScheduler | None,
    link: Link,
    lag: LagMonitor,
    probes: dict[str, Probe],
    tasks: list[asyncio.Task[None]],
) -> WorkerScheduler:
    """Run the assigned checks: the first assignment starts the scheduler."""
    if scheduler is None:
        scheduler = WorkerScheduler(link, lag, message.max_concurrency)
        scheduler.probes = probes
        tasks.append(asyncio.create_task(scheduler.run()))
    context = ProbeContext(HeartbeatBook(time.time()), message.timezone)
    for kind in {c.type for c in message.checks} - probes.keys():
        probes[kind] = PROBES[kind].factory(context)
    scheduler.set_checks(message.checks)
    gc.collect()
    gc.freeze()  # the checks live as long as the process: keep them out of GC scans
    trim_heap()  # the unpickled frame and its garbage leave the RSS
    return scheduler


async def _pulse(link: Link) -> None:
    while True:
        await asyncio.sleep(PULSE_S)
        link.soon()


def run(sock: socket.socket, index: int, log_level: str, json: bool) -> None:
    """Be worker ``index``, talking to the daemon over ``sock``, until the daemon closes it."""
    # The daemon decides when a worker stops, by closing its end once it has drained it:
    # Ctrl-C in a terminal (or a SIGTERM) sent to the whole process group must not kill
    # workers first, nor print their tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(log_level, json=json)
    structlog.contextvars.bind_contextvars(worker=index)

    async def talk() -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            await serve(reader, writer)
        finally:
            writer.close()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(talk())
