"""Probe worker processes: a real daemon whose checks run in child processes, on real targets."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.config.load import load_config
from monitor.core.fields import CheckBase
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.probes.http import HttpPlan
from monitor.runtime.workers import shard_of, split, worker_count
from tests.waiting import until

CHECKS = 12
INTERVAL_S = 0.2


class Target:
    """An HTTP target counting hits per path; ``/broken*`` answers 500 while broken."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.broken = False
        self.failed_at: list[float] = []  # monotonic times of the requests answered 500

    async def handle(self, request: web.Request) -> web.Response:
        """200, or 500 for a broken path."""
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if self.broken and request.path.startswith("/broken"):
            self.failed_at.append(time.monotonic())
            return web.Response(status=500)
        return web.Response(text="ok")


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    """The target and its base URL."""
    state = Target()
    app = web.Application()
    app.router.add_get("/{name}", state.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield state, str(server.make_url("")).rstrip("/")


def write_config(path: Path, base: str, *, workers: int | str, checks: int = CHECKS) -> Path:
    """A checks.yaml with ``checks`` HTTP checks, one of them ``broken``, and one heartbeat."""
    lines = [
        f"daemon: {{state_dir: {path / 'state'}, listen: '127.0.0.1:0', probe_workers: {workers}}}",
        f"defaults: {{interval: {INTERVAL_S}s, timeout: 1s, retry_interval: 0.05s,"
        " failure_threshold: 2}",
        "services:",
        "  - {id: web, name: {en: Web}}",
        "checks:",
        f"  - {{id: broken, service: web, type: http, url: '{base}/broken',"
        " retry_interval: 0.01s}",
        "  - {id: batch, service: web, type: heartbeat, every: 1h, grace: 1h, "
        "token_file: " + str(path / "token") + "}",
    ]
    lines += [
        f"  - {{id: c{i}, service: web, type: http, url: '{base}/c{i}'}}" for i in range(checks)
    ]
    lines += ["notices: {transport: file}"]
    (path / "token").write_text("s3cret-token-value\n")
    config = path / "checks.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture
async def daemon(tmp_path: Path, target: tuple[Target, str]) -> AsyncIterator[Daemon]:
    """A running daemon with two probe workers."""
    running = Daemon(load_config(write_config(tmp_path, target[1], workers=2)))
    await running.start()
    yield running
    await running.stop()


def children(daemon: Daemon) -> list[int]:
    """The pids of the daemon's worker processes."""
    return [w.process.pid for w in daemon.workers.workers if w.process is not None]


async def test_every_check_is_probed_by_a_worker_and_judged_by_the_daemon(
    daemon: Daemon, target: tuple[Target, str]
) -> None:
    """Results from both workers reach the daemon's detector, and no process runs a check twice."""
    state, _ = target
    assert len(children(daemon)) == 2 and os.getpid() not in children(daemon)
    await until(lambda: all(state.hits.get(f"/c{i}", 0) >= 2 for i in range(CHECKS)))
    await until(
        lambda: all(daemon.engine.states[f"c{i}"].status is CheckStatus.UP for i in range(CHECKS))
    )
    assert daemon.scheduler.checks.keys() == {"batch"}  # heartbeats stay with the web hooks
    assert {c.id for w in daemon.workers.shards for c in w} == {"broken"} | {
        f"c{i}" for i in range(CHECKS)
    }


async def test_an_outage_seen_by_a_worker_is_confirmed_at_retry_pace(
    daemon: Daemon, target: tuple[Target, str]
) -> None:
    """The worker awaits the daemon's verdict, so a first failure is retried at retry_interval."""
    state, _ = target
    await until(lambda: daemon.engine.states["broken"].status is CheckStatus.UP)
    state.broken = True
    await until(lambda: daemon.engine.states["broken"].status is CheckStatus.DOWN, timeout_s=3)
    first, second = state.failed_at[:2]
    print(f"retried {second - first:.3f} s after the first failure")  # for `pytest -s`
    # Retried 10 ms after the verdict, not at the next slot of the 200 ms grid.
    assert second - first < INTERVAL_S / 2


def parent_of(pid: int) -> int:
    """The parent pid of ``pid``, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


async def test_workers_are_forked_by_the_fork_server_and_hold_slim_checks(
    daemon: Daemon, target: tuple[Target, str]
) -> None:
    """One fork server, the workers' parent, imported everything; workers get frozen plans."""
    state, _ = target
    server = daemon.workers.server.process
    assert server is not None
    assert {parent_of(pid) for pid in children(daemon)} == {server.pid}
    assert parent_of(server.pid) == os.getpid()
    handed = [daemon.workers._assignment(w).checks for w in daemon.workers.workers]
    assert all(isinstance(c, HttpPlan) for checks in handed for c in checks)
    await until(lambda: all(state.hits.get(f"/c{i}", 0) >= 2 for i in range(CHECKS)))
    await until(lambda: daemon.engine.states["c0"].status is CheckStatus.UP)


async def test_a_killed_worker_is_restarted_and_its_checks_go_on(
    daemon: Daemon, target: tuple[Target, str]
) -> None:
    """SIGKILL of one worker: it is started again and its shard keeps being probed."""
    state, _ = target
    victim = daemon.workers.workers[0]
    assert victim.process is not None
    old_pid = victim.process.pid
    mine = [c.id for c in daemon.workers.shards[0]]
    killed = victim.process
    os.kill(old_pid, signal.SIGKILL)
    await until(lambda: victim.process is not None and victim.process.pid != old_pid, timeout_s=5)
    assert killed.returncode == -signal.SIGKILL  # as the fork server saw it exit
    before = {check: state.hits.get(f"/{check}", 0) for check in mine}
    await until(lambda: all(state.hits.get(f"/{c}", 0) > before[c] + 1 for c in mine), timeout_s=5)


async def test_reload_moves_checks_without_restarting_workers(
    daemon: Daemon, target: tuple[Target, str], tmp_path: Path
) -> None:
    """A reload adds and removes checks in the same worker processes."""
    state, base = target
    pids = children(daemon)
    assert await daemon.reload(write_config(tmp_path, base, workers=2, checks=CHECKS + 4)) == []
    await until(lambda: all(state.hits.get(f"/c{i}", 0) >= 1 for i in range(CHECKS + 4)))
    assert children(daemon) == pids
    assert await daemon.reload(write_config(tmp_path, base, workers=2, checks=2)) == []
    await asyncio.sleep(0.1)  # let a probe already in flight finish
    removed, kept = state.hits.get(f"/c{CHECKS}", 0), state.hits.get("/c1", 0)
    await until(lambda: state.hits.get("/c1", 0) >= kept + 2)
    assert state.hits.get(f"/c{CHECKS}", 0) == removed


async def test_stop_ends_every_worker_process(tmp_path: Path, target: tuple[Target, str]) -> None:
    """After stop, no worker process is left running."""
    running = Daemon(load_config(write_config(tmp_path, target[1], workers=2)))
    await running.start()
    processes = [w.process for w in running.workers.workers if w.process is not None]
    await running.stop()
    assert [p.returncode for p in processes] == [0, 0]


def test_auto_runs_workers_only_for_real_load_on_several_cores(tmp_path: Path) -> None:
    """``auto``: none below 200 probes/s or on one core; one per core above."""
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", workers="auto", checks=10))
    checks: list[CheckBase] = list(config.checks)
    assert worker_count("auto", checks, 8) == 0  # 11 checks at 5/s each: 55 probes/s
    many = checks * 4  # 220 probes/s
    assert worker_count("auto", many, 8) == 8
    assert worker_count("auto", many, 1) == 0
    assert worker_count(3, checks, 1) == 3


def test_split_keeps_heartbeats_home_and_shards_are_stable(tmp_path: Path) -> None:
    """Heartbeat checks stay in the daemon; a check's worker depends only on its id."""
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9", workers=2))
    local, remote = split(list(config.checks), 2)
    assert [c.id for c in local] == ["batch"] and "batch" not in {c.id for c in remote}
    alone, none = split(list(config.checks), 0)  # one process: all home, http ones as plans
    assert [c.id for c in alone] == [c.id for c in config.checks] and none == []
    assert all(isinstance(c, HttpPlan) for c in alone if c.type == "http")
    # The plans live apart from the models: a reload of the same file changes no check.
    again = load_config(write_config(tmp_path, "http://127.0.0.1:9", workers=2))
    assert list(again.checks) == list(config.checks)
    assert [shard_of(f"c{i}", 4) for i in range(6)] == [shard_of(f"c{i}", 4) for i in range(6)]
    assert len({shard_of(f"c{i}", 4) for i in range(100)}) == 4
