"""A failed reload keeps the old config running: hostile files, signalled like SIGHUP does.

``tests/test_reload.py`` proves ``Daemon.reload()`` keeps the old config object for one bad
value, and ``tests/test_systemd.py`` that a subprocess survives one bad SIGHUP. What this adds:
the reload is triggered by a real SIGHUP through the CLI's own handler (``cli._reloads``), the
broken files are hostile ones (YAML syntax, an alias bomb, a Python tag, a 17 MB file, a missing
file, a directory), and after each the *old checks keep being probed*, /healthz still answers,
the open incidents are untouched and the failure shows in the gauge, the log and the status
line; then a good file with a new check is adopted and that check is probed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from monitor.cli.main import _reloads
from monitor.config.load import ConfigError, load_config
from monitor.config.yamlsource import MAX_BYTES
from monitor.daemon import Daemon
from monitor.runtime.systemd import SystemdNotifier
from tests.conftest import ConfigFactory
from tests.waiting import until

FAST = {"interval": "200ms", "retry": "100ms", "timeout": "1s"}
OLD_CHECKS = ("tracking-ws", "labels-ws")
Logs = list[MutableMapping[str, Any]]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Every structlog event emitted during the test, as dicts."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def daemon(make_config: ConfigFactory, logs: Logs) -> AsyncIterator[Daemon]:
    """A running daemon whose two checks fail (closed port), reloaded on SIGHUP as by the CLI."""
    running = Daemon(make_config(**FAST))
    await running.start()
    loop = asyncio.get_running_loop()
    wanted = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, wanted.set)
    reloader = asyncio.create_task(_reloads(running, SystemdNotifier.from_env({}), wanted))
    yield running
    loop.remove_signal_handler(signal.SIGHUP)
    reloader.cancel()
    await asyncio.gather(reloader, return_exceptions=True)
    await running.stop()


def probes_of(logs: Logs, check_id: str) -> int:
    """How many failed probe runs of a check were logged so far (every failure is)."""
    return sum(1 for e in logs if e["event"] == "probe" and e.get("check") == check_id)


def gauge(daemon: Daemon) -> float | None:
    """forewarn_config_last_reload_successful."""
    return daemon.metrics.registry.get_sample_value("forewarn_config_last_reload_successful")


def events(logs: Logs, name: str) -> Logs:
    """The captured events called ``name``."""
    return [e for e in logs if e["event"] == name]


async def sighup(logs: Logs) -> None:
    """Send SIGHUP to this process and wait for the reload it starts to finish."""
    done = len(events(logs, "reload_failed")) + len(events(logs, "reloaded"))
    os.kill(os.getpid(), signal.SIGHUP)
    await until(lambda: len(events(logs, "reload_failed")) + len(events(logs, "reloaded")) > done)


async def healthz(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    """GET /healthz from the daemon's own port."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{daemon.port}/healthz") as response,
    ):
        return response.status, await response.json()


def syntax_error(path: Path, good: str) -> int:
    """An unclosed flow mapping, as an editor saved half-way would leave."""
    path.write_text(good.replace("tracking-ws, service", "tracking-ws service", 1), "utf-8")
    return 1 + good[: good.index("tracking-ws, service")].count("\n")


def alias_bomb(path: Path, good: str) -> int:
    """Billion laughs appended to the real file."""
    levels = "".join(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 9))
    path.write_text(good + "l0: &l0 [a, b, c, d, e, f, g, h, i]\n" + levels, "utf-8")
    return good.count("\n") + 7  # l6, the first level past the cap


def python_tag(path: Path, good: str) -> int:
    """A tag an unsafe loader would run."""
    path.write_text(good.replace("from: ", "from: !!python/object/apply:os.system ", 1), "utf-8")
    return 1 + good[: good.index("from: ")].count("\n")


def oversized(path: Path, good: str) -> int:
    """The real file padded past the size cap (sparse: no disk used)."""
    path.write_text(good, "utf-8")
    with path.open("ab") as handle:
        handle.truncate(MAX_BYTES + 1024 * 1024)
    return 1


def missing(path: Path, good: str) -> int:
    """The file removed, as a botched deployment might leave it."""
    path.unlink()
    return 1


def directory(path: Path, good: str) -> int:
    """A directory where the file was."""
    path.unlink()
    path.mkdir()
    return 1


BREAKERS: list[Callable[[Path, str], int]] = [
    syntax_error,
    alias_bomb,
    python_tag,
    oversized,
    missing,
    directory,
]


def restore(path: Path, text: str) -> None:
    """Put ``text`` back at ``path``, whatever is there now."""
    if path.is_dir():
        path.rmdir()
    path.write_text(text, "utf-8")


async def test_hostile_files_on_sighup_keep_the_old_checks_probing_then_a_good_one_is_adopted(
    daemon: Daemon, logs: Logs
) -> None:
    """After each refused file the old checks keep running; the fixed file is then adopted."""
    path = daemon.config.source
    good = path.read_text("utf-8")
    await until(
        lambda: {i.service_id for i in daemon.engine.open.values()} == {"tracking", "labels"}
    )
    config, incidents = daemon.config, dict(daemon.engine.open)
    for breaker in BREAKERS:
        line = breaker(path, good)
        started = time.process_time()
        await sighup(logs)
        failed = events(logs, "reload_failed")[-1]
        assert failed["errors"][0].startswith(f"{path}:{line}: "), (breaker.__name__, failed)
        assert time.process_time() - started < 1.0, breaker.__name__
        assert daemon.config is config and daemon.reload_error == failed["errors"][0]
        assert gauge(daemon) == 0
        assert daemon.status_line().startswith(f"reload failed: {path}:{line}: ")
        # The old checks keep being probed, on their old schedule, and serving goes on.
        runs = {check: probes_of(logs, check) for check in OLD_CHECKS}
        await until(lambda: all(probes_of(logs, c) >= runs[c] + 2 for c in OLD_CHECKS))  # noqa: B023
        assert set(daemon.scheduler.checks) == set(OLD_CHECKS)
        status, body = await healthz(daemon)
        assert (status, body["status"], body["checks"]) == (200, "ok", 2)
        assert daemon.engine.open == incidents
        restore(path, good)

    # Fixed, with one more check: adopted, probed, the failure forgotten.
    restore(
        path,
        good.replace(
            "checks:\n",
            "checks:\n  - {id: labels-tcp, service: labels, type: tcp, host: 127.0.0.1, port: 9}\n",
            1,
        ),
    )
    await sighup(logs)
    assert events(logs, "reloaded") and daemon.config is not config
    assert gauge(daemon) == 1 and daemon.reload_error is None
    assert daemon.status_line().startswith("3 checks, ")
    await until(lambda: probes_of(logs, "labels-tcp") >= 2)
    assert {i.id for i in daemon.engine.open.values()} == {i.id for i in incidents.values()}
    assert len(events(logs, "reload_failed")) == len(BREAKERS)


async def longest_stall(work: Callable[[], Awaitable[object]]) -> float:
    """The longest the event loop went without turning while ``work`` ran."""
    gaps: list[float] = [0.0]

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)  # the ticker has started
    try:
        await work()
        await asyncio.sleep(0.02)  # the ticker wakes and records the gap that work made
    finally:
        ticking.cancel()
    return max(gaps)


async def test_reloading_a_large_file_does_not_stall_the_event_loop(
    daemon: Daemon, logs: Logs
) -> None:
    """A 300,000-value file is refused while the loop keeps turning, unlike a parse on the loop.

    The bound is relative, so a loaded machine cannot fail it: the same parse run on the
    loop (what the daemon did before the parse moved to a thread) stalls it for the whole
    parse; the reload must stall it for well under that. libyaml still holds the GIL for one
    stretch (about 40 % of the parse on a quiet machine). Noise can only lengthen a stall, so
    the reload's best of three attempts is compared with the on-loop baseline.
    """
    path = daemon.config.source
    good = path.read_text("utf-8")
    path.write_text(good + "padding: [" + "0," * 300_000 + "0]\n", "utf-8")

    async def on_the_loop() -> None:
        with pytest.raises(ConfigError):
            load_config(path)

    baseline = await longest_stall(on_the_loop)
    stalls = []
    for _ in range(3):
        stalls.append(await longest_stall(lambda: sighup(logs)))
        if stalls[-1] < 0.7 * baseline:
            break
    assert events(logs, "reload_failed")[-1]["errors"][0].startswith(f"{path}:")
    print(f"parse on the loop stalled it {baseline:.2f} s; reloads stalled it {stalls}")
    assert min(stalls) < 0.7 * baseline, f"reload stalls {stalls} vs {baseline:.2f} s on the loop"
