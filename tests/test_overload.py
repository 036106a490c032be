"""Overload must never become a false outage: the real daemon, a healthy target, a CPU hog."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from monitor.config.load import load_config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.runtime.lag import QUIET_S
from monitor.runtime.metrics import Metrics
from monitor.web.app import build_app
from tests.waiting import until

CHECKS = 30
TIMEOUT_S = 0.2
HOG_S = 0.3  # longer than the timeout: every probe in flight overruns it
ANSWER_S = 0.08  # the target's own latency, well within the timeout: probes are in flight


class Target:
    """A healthy HTTP target on 127.0.0.1, answering in 80 ms, that can be made to hang."""

    def __init__(self) -> None:
        self.hanging = False
        self.released = asyncio.Event()  # lets hung handlers finish when the test ends

    async def handle(self, _: web.Request) -> web.Response:
        """200 ``ok`` after ANSWER_S, or no answer at all while hanging."""
        if self.hanging:
            await self.released.wait()
        await asyncio.sleep(ANSWER_S)
        return web.Response(text="ok")


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    """The target and its URL."""
    state = Target()
    app = web.Application()
    app.router.add_get("/", state.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield state, str(server.make_url("/"))
        state.released.set()


def write_config(tmp_path: Path, url: str) -> Path:
    """Many quick checks on one target, two failures to go down: a hair trigger."""
    lines = [
        f"daemon: {{state_dir: {tmp_path / 'state'}, listen: '127.0.0.1:0'}}",
        "defaults: {interval: 300ms, timeout: 200ms, retry_interval: 100ms,",
        "           failure_threshold: 2, success_threshold: 2}",
        "services:",
        *(f"  - {{id: s{n}, name: Service {n}}}" for n in range(CHECKS // 10)),
        "checks:",
        *(
            f"  - {{id: c{n:02d}, service: s{n // 10}, type: http, url: '{url}'}}"
            for n in range(CHECKS)
        ),
    ]
    path = tmp_path / "checks.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def hog(seconds: float) -> None:
    """Block the event loop with CPU work, as an overloaded prober's own code would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def hogging(rounds: int) -> None:
    """Block the loop for HOG_S, let it breathe 50 ms, ``rounds`` times."""
    for _ in range(rounds):
        hog(HOG_S)
        await asyncio.sleep(0.05)


def health(port: int) -> tuple[int, dict[str, object]]:
    """GET /healthz from the daemon: status code and body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz")
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:  # noqa: S310 - 127.0.0.1
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def down(daemon: Daemon) -> list[str]:
    """Checks the detector holds down."""
    return [k for k, s in daemon.engine.states.items() if s.status is CheckStatus.DOWN]


async def test_a_stalled_daemon_sets_timeouts_aside_and_still_sees_real_ones(
    tmp_path: Path, target: tuple[Target, str]
) -> None:
    """Stalls longer than the timeout open no incident; a hanging target still goes down."""
    state, url = target
    daemon = Daemon(load_config(write_config(tmp_path, url)))
    with structlog.testing.capture_logs() as logs:
        await daemon.start()
        try:
            assert gc.get_freeze_count() > 0  # start-up objects are out of the GC's way
            await until(
                lambda: all(s.status is CheckStatus.UP for s in daemon.engine.states.values())
            )
            await hogging(rounds=3)  # ~1 s, most of it with the loop blocked
            await asyncio.sleep(0.1)  # the probes caught by the last block report back
            metrics = daemon.metrics.registry
            inconclusive = sum(
                metrics.get_sample_value(
                    "forewarn_probe_inconclusive_total", {"check": c, "cause": "loop_stall"}
                )
                or 0.0
                for c in daemon.engine.states
            )
            assert inconclusive > 0  # the hog did make probes overrun their timeout
            assert down(daemon) == []
            assert daemon.engine.open == {} and daemon.store.open_incidents() == []
            code, body = await asyncio.to_thread(health, daemon.port)
            assert code == 503 and body["status"] == "degraded"
            assert isinstance(body["loop_lag_s"], float) and body["loop_lag_s"] >= HOG_S * 0.8
            lag_events = [e for e in logs if e["event"] == "loop_lag"]
            assert len(lag_events) == 1  # one episode, not one event per block or per tick

            state.hanging = True  # the hog is gone: a real timeout must be believed
            # At once, not once the lag episode has been quiet for QUIET_S (10 s).
            await until(lambda: len(down(daemon)) == CHECKS, timeout_s=QUIET_S / 2)
            assert len(daemon.engine.open) == CHECKS // 10
        finally:
            state.released.set()
            await daemon.stop()
    assert gc.get_freeze_count() == 0
    started = next(e for e in logs if e["event"] == "started")
    assert started["loop"] == "asyncio"
    aside = [e for e in logs if e["event"] == "probe_inconclusive"]
    assert aside and {e["reason"] for e in aside} <= {"timeout", "connect_timeout"}


class ThreadNoting(Collector):
    """A Prometheus collector with no series that notes which thread renders it."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def collect(self) -> Iterator[Metric]:
        """Note the rendering thread; yield nothing."""
        self.threads.append(threading.current_thread())
        return iter(())


async def test_metrics_are_rendered_off_the_event_loop() -> None:
    """A scrape renders the registry in a worker thread, so a big one never stalls probes."""
    metrics = Metrics()
    noting = ThreadNoting()
    metrics.registry.register(noting)
    app = build_app(metrics, lambda: {"status": "ok"})
    async with (
        TestServer(app, host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/metrics")) as reply,
    ):
        assert reply.status == 200
    assert noting.threads and threading.current_thread() not in noting.threads
