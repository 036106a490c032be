"""DNS that never answers for part of the targets: the other checks keep their schedule.

Issue 8, item 9. Name resolution is a process edge: the probes take their resolver from the
ProbeContext, so here it is a name service that never answers for names under
``.stalled.test`` and answers 127.0.0.1 for the rest; dns checks ask a real UDP socket on
127.0.0.1 that never replies. A real Scheduler runs 20 stalled and 20 healthy checks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from probe_servers import context, serve, settings

from monitor.core.fields import CheckBase
from monitor.probes import PROBES
from monitor.probes.base import Probe, ProbeContext, ProbeResult, Reason
from monitor.probes.resolver import SystemResolver
from monitor.runtime.metrics import Metrics
from monitor.runtime.scheduler import Scheduler, first_run, phase_offset
from tests.waiting import LoopLateness

INTERVAL_S = 0.5
STALL_TIMEOUT_S = 0.3
HEALTHY_TIMEOUT_S = 1.0
ON_TIME_S = 0.1  # how late a run may start on a loop shared by 40 checks, plus the loop lateness


class StallingResolver(AbstractResolver):
    """A name service: names under ``.stalled.test`` never get an answer, others 127.0.0.1."""

    def __init__(self) -> None:
        self.asked: collections.Counter[str] = collections.Counter()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Answer 127.0.0.1, or never for a stalled name (until the caller gives up)."""
        self.asked[host] += 1
        if host.endswith(".stalled.test"):
            await asyncio.Event().wait()
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


class StallingGetaddrinfo:
    """``socket.getaddrinfo`` of a system whose DNS never answers for ``.stalled.test`` names.

    It blocks its thread, as the real one does while the system's resolver waits, until
    ``release`` (the end of the test) stands for the system giving up.
    """

    def __init__(self) -> None:
        self.asked: collections.Counter[str] = collections.Counter()
        self.release = threading.Event()

    def __call__(self, host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        """Block for a stalled name, then fail; else 127.0.0.1."""
        self.asked[host] += 1
        if host.endswith(".stalled.test"):
            self.release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]


@contextlib.asynccontextmanager
async def silent_nameserver() -> AsyncIterator[str]:
    """A UDP socket on 127.0.0.1 that never replies to a query; yields ``127.0.0.1:port``."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        yield f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


async def ok(request: web.Request) -> web.Response:
    """A healthy answer."""
    return web.Response(text="ok")


def make(kind: str, check_id: str, timeout: float, **values: Any) -> CheckBase:
    """A validated check of ``kind`` running every 500 ms."""
    model: type[CheckBase] = PROBES[kind].settings
    return model.model_validate(
        settings(id=check_id, type=kind, interval=INTERVAL_S, timeout=timeout, retry_interval=1.0)
        | values
    )


def stalled_checks(nameserver: str) -> list[CheckBase]:
    """20 checks whose names never resolve: 8 http, 4 tcp, 4 tls, 4 dns."""
    timeout = STALL_TIMEOUT_S
    return [
        *(make("http", f"http-{i}", timeout, url=f"http://ws{i}.stalled.test/") for i in range(8)),
        *(make("tcp", f"tcp-{i}", timeout, host=f"edi{i}.stalled.test", port=21) for i in range(4)),
        *(make("tls", f"tls-{i}", timeout, host=f"tls{i}.stalled.test") for i in range(4)),
        *(
            make("dns", f"dns-{i}", timeout, name=f"ns{i}.example.net", nameservers=[nameserver])
            for i in range(4)
        ),
    ]


def stall_verdict(check: CheckBase) -> tuple[Reason, str]:
    """The result a stalled check must give."""
    limit = f"{STALL_TIMEOUT_S * 1000:g}ms"
    host = getattr(check, "host", "")
    if check.type == "http":
        return Reason.DNS, f"no DNS answer within {limit}"
    if check.type == "dns":
        return Reason.TIMEOUT, f"no DNS answer for {getattr(check, 'name', '')} within {limit}"
    return Reason.DNS, f"no DNS answer for {host} within {limit}"


def started_within(metrics: Metrics, seconds: float) -> float:
    """How many runs the scheduler started at most ``seconds`` late (to its next bucket edge)."""
    (histogram,) = (
        family
        for family in metrics.registry.collect()
        if family.name == "forewarn_scheduler_lag_seconds"
    )
    buckets = [sample for sample in histogram.samples if sample.name.endswith("_bucket")]
    return next(b.value for b in buckets if float(b.labels["le"]) >= seconds)


def due_at(started: float, check_id: str, k: int) -> float:
    """When run ``k`` of a check added at ``started`` is due: early, then after its anchor."""
    offset = phase_offset(check_id, INTERVAL_S)
    return first_run(started, offset) if k == 0 else started + offset + k * INTERVAL_S


@pytest.mark.parametrize("edge", ["name service", "system getaddrinfo"])
async def test_checks_keep_their_schedule_while_dns_never_answers_for_others(edge: str) -> None:
    """20 checks stalled in DNS fail with dns or timeout in time; 20 healthy ones stay on time.

    The edge is an asyncio name service, or the system's getaddrinfo blocking its thread as it
    does when the DNS server is silent, behind the probes' default SystemResolver.
    """
    stalling = StallingGetaddrinfo()
    resolver = StallingResolver() if edge == "name service" else SystemResolver(stalling)
    base: ProbeContext = context()
    probe_context = ProbeContext(heartbeats=base.heartbeats, resolver=resolver)
    probes: dict[str, Probe] = {
        kind: PROBES[kind].factory(probe_context) for kind in ("http", "tcp", "tls", "dns")
    }
    app = web.Application()
    app.router.add_get("/ok", ok)
    results: dict[str, list[ProbeResult]] = collections.defaultdict(list)
    async with serve(app) as url, silent_nameserver() as nameserver:
        port = url.rsplit(":", 1)[1]
        healthy = [
            make("http", f"ok-{i}", HEALTHY_TIMEOUT_S, url=f"http://shop.healthy.test:{port}/ok")
            for i in range(20)
        ]
        stalled = stalled_checks(nameserver)
        enough = asyncio.Event()

        def record(result: ProbeResult) -> bool:
            results[result.check_id].append(result)
            if all(len(results[check.id]) >= 5 for check in stalled):
                enough.set()
            return False  # never confirming: every check stays on its grid

        tasks_before = len(asyncio.all_tasks())
        metrics = Metrics()
        async with LoopLateness() as lateness:
            started = time.monotonic()
            scheduler = Scheduler(
                [*healthy, *stalled], probes, record, metrics, clock=time.monotonic
            )
            running = asyncio.create_task(scheduler.run())
            try:
                await asyncio.wait_for(enough.wait(), 10)
                ended = time.monotonic()
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                stalling.release.set()  # the system gives up: the blocked threads end
                for probe in probes.values():
                    await probe.close()
        tasks_after = len(asyncio.all_tasks())
    # How late a run may start: ON_TIME_S, and what a busy machine delayed the loop by. A run
    # queued behind a stalled lookup would wait for its 300 ms timeout: the loop, free, would
    # not be late meanwhile.
    on_time_s = ON_TIME_S + lateness.worst

    stalled_s = [r.duration_s for check in stalled for r in results[check.id]]
    loop_late = lateness.worst
    starts_late = [
        r.at - due_at(started, check.id, k)
        for check in healthy
        for k, r in enumerate(results[check.id])
    ]
    counts = sorted({len(results[check.id]) for check in healthy})
    print(  # the figures, for `pytest -s`
        f"{edge}: {ended - started:.2f}s, healthy runs {counts} per check,"
        f" lateness max {max(starts_late) * 1000:.1f}ms (loop {loop_late * 1000:.1f}ms);"
        f" stalled runs {len(stalled_s)},"
        f" {min(stalled_s):.3f}-{max(stalled_s):.3f}s each"
    )
    for check in stalled:
        for result in results[check.id]:
            assert (result.reason, result.detail) == stall_verdict(check), check.id
            assert STALL_TIMEOUT_S <= result.duration_s < STALL_TIMEOUT_S + 1 + loop_late
    for check in healthy:
        runs = results[check.id]
        assert all(result.ok for result in runs), [r.detail for r in runs if not r.ok]
        first_due = started + phase_offset(check.id, INTERVAL_S)  # the anchor of its grid
        # result.at is the start of each run (clock=time.monotonic): it follows the grid.
        for k, result in enumerate(runs):
            assert -0.01 <= result.at - due_at(started, check.id, k) < on_time_s, (check.id, k)
        due = int((ended - first_due) / INTERVAL_S) + 1  # slots that came due before the end
        missed = int(on_time_s / INTERVAL_S)  # slots a run as late as allowed skips
        assert due - 1 - missed <= len(runs) <= due, (check.id, len(runs), due)
    healthy_runs = sum(len(results[check.id]) for check in healthy)
    if isinstance(resolver, StallingResolver):
        # Resolved on every run (those in flight when the scheduler stopped were asked too).
        assert healthy_runs <= resolver.asked["shop.healthy.test"] <= healthy_runs + len(healthy)
    else:
        # Each hung name held one thread, however often its checks ran and gave up.
        stalled_names = [name for name in stalling.asked if name.endswith(".stalled.test")]
        assert len(stalled_names) == 16
        assert all(stalling.asked[name] == 1 for name in stalled_names), stalling.asked
        assert stalling.asked["shop.healthy.test"] >= len(healthy)
    lag_count = metrics.registry.get_sample_value("forewarn_scheduler_lag_seconds_count")
    assert lag_count is not None and lag_count >= healthy_runs
    # No run of any check started later than on_time_s (100 ms on an idle machine).
    assert started_within(metrics, on_time_s) == lag_count
    assert tasks_after == tasks_before  # the stalled lookups were all abandoned, none left
