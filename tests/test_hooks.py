"""Heartbeats: pings sent over HTTP to the real aiohttp app, judged by the heartbeat probe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pydantic
import pytest
from probe_servers import serve, settings

from monitor.config.load import load_config
from monitor.daemon import Daemon
from monitor.probes import PROBES
from monitor.probes.base import ProbeContext, Reason
from monitor.probes.heartbeat import HeartbeatBook, HeartbeatCheck, HeartbeatProbe
from monitor.runtime.metrics import Metrics
from monitor.web.app import build_app

TOKEN = "nightly-edi-export-7f3a9c"
OTHER = "label-batch-token-0000000"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()
MINUTE = 60.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def heartbeat(**values: Any) -> HeartbeatCheck:
    """A validated heartbeat check: every 1h + 10m unless told otherwise."""
    values.setdefault("token", TOKEN)
    if "schedule" not in values:
        values.setdefault("every", "1h")
    values.setdefault("grace", "10m")
    return HeartbeatCheck.model_validate(settings(type="heartbeat", **values))


@pytest.fixture
def clock() -> Clock:
    """Time starts at the daemon's start."""
    return Clock(START)


@pytest.fixture
def check() -> HeartbeatCheck:
    """The nightly export's heartbeat."""
    return heartbeat(id="edi-export")


@pytest.fixture
def book(clock: Clock, check: HeartbeatCheck) -> HeartbeatBook:
    """The book the daemon would build, knowing this check's token and another one."""
    other = heartbeat(id="labels-batch", token=OTHER)
    return HeartbeatBook.for_checks([check, other], started_at=START, clock=clock)


@pytest.fixture
def probe(book: HeartbeatBook) -> HeartbeatProbe:
    """The heartbeat probe reading that book, writing times in UTC."""
    return HeartbeatProbe(ProbeContext(heartbeats=book, timezone="UTC"))


@pytest.fixture
async def base(book: HeartbeatBook) -> AsyncIterator[str]:
    """The daemon's web app, serving the book's hooks."""
    app = build_app(Metrics(), lambda: {"status": "ok"}, book)
    async with serve(app) as url:
        yield url


async def post(url: str) -> tuple[int, str]:
    """POST with no body; the status and the text of the answer."""
    async with aiohttp.ClientSession() as session, session.post(url) as resp:
        return resp.status, await resp.text()


def test_heartbeat_is_registered_with_its_settings_and_factory(book: HeartbeatBook) -> None:
    """The registry maps ``heartbeat`` to its settings model and a probe using the context."""
    assert PROBES["heartbeat"].settings is HeartbeatCheck
    assert isinstance(PROBES["heartbeat"].factory(ProbeContext(heartbeats=book)), HeartbeatProbe)


async def test_ping_is_recorded_for_its_check_only(
    base: str, book: HeartbeatBook, clock: Clock
) -> None:
    """``POST /heartbeat/{token}`` answers 200 and records the time for that check alone."""
    clock.now = START + 62 * MINUTE
    assert await post(f"{base}/heartbeat/{TOKEN}") == (200, "ok\n")
    assert book.last_ping("edi-export") == START + 62 * MINUTE
    assert book.last_ping("labels-batch") is None


@pytest.mark.parametrize("token", ["x" * len(TOKEN), TOKEN[:-1], TOKEN + "x", "short"])
async def test_unknown_token_gets_404_without_echoing_it(
    base: str, book: HeartbeatBook, token: str
) -> None:
    """A near-miss token is refused with the same 404, recording nothing."""
    status, text = await post(f"{base}/heartbeat/{token}")
    assert (status, text) == (404, "unknown heartbeat\n")
    assert book.last_ping("edi-export") is None


async def test_get_is_not_a_ping(base: str, book: HeartbeatBook) -> None:
    """Only POST records a ping: a crawler following a link does not."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/heartbeat/{TOKEN}") as r:
        assert r.status == 405
    assert book.last_ping("edi-export") is None


async def test_no_alarm_before_every_plus_grace_after_start(
    probe: HeartbeatProbe, check: HeartbeatCheck
) -> None:
    """Before any ping, the daemon's start stands for the last one: no false alarm on restart."""
    result = await probe.run(check, START + 70 * MINUTE)
    assert result.ok and result.reason is None


async def test_silence_since_start_fails_with_no_heartbeat(
    probe: HeartbeatProbe, check: HeartbeatCheck
) -> None:
    """No ping within every + grace of the start fails, saying since when."""
    result = await probe.run(check, START + 71 * MINUTE)
    assert result.reason is Reason.NO_HEARTBEAT
    assert result.detail == "no ping since start at 12:00 (expected every 1h + 10m)"


async def test_late_ping_fails_with_no_heartbeat_naming_the_last_one(
    base: str, probe: HeartbeatProbe, check: HeartbeatCheck, clock: Clock
) -> None:
    """A ping at 13:02 then silence fails at 14:13 with the time of the last ping."""
    clock.now = START + 62 * MINUTE
    await post(f"{base}/heartbeat/{TOKEN}")
    assert (await probe.run(check, START + 132 * MINUTE)).ok
    result = await probe.run(check, START + 133 * MINUTE)
    assert (result.reason, result.detail) == (
        Reason.NO_HEARTBEAT,
        "no ping since 13:02 (expected every 1h + 10m)",
    )


async def test_fail_hook_fails_the_check_at_once_until_the_next_ping(
    base: str, probe: HeartbeatProbe, check: HeartbeatCheck, clock: Clock
) -> None:
    """``/fail`` makes the next run fail with job_failed; a later good ping clears it."""
    clock.now = START + 5 * MINUTE
    assert await post(f"{base}/heartbeat/{TOKEN}/fail") == (200, "ok\n")
    result = await probe.run(check, START + 6 * MINUTE)
    assert (result.reason, result.detail) == (Reason.JOB_FAILED, "job reported a failure at 12:05")
    clock.now = START + 7 * MINUTE
    await post(f"{base}/heartbeat/{TOKEN}")
    assert (await probe.run(check, START + 8 * MINUTE)).ok


async def test_scheduled_heartbeat_names_the_deadline_it_missed(book: HeartbeatBook) -> None:
    """A weekday 06:00 job with 30m grace, silent on Monday, fails after 06:30 saying so."""
    check = heartbeat(id="edi-export", schedule="0 6 * * 1-5", grace="30m", timezone="UTC")
    probe = HeartbeatProbe(ProbeContext(heartbeats=book, timezone="Europe/Paris"))
    monday = datetime(2026, 11, 23, 6, 31, tzinfo=UTC).timestamp()
    result = await probe.run(check, monday)
    assert (result.reason, result.detail) == (
        Reason.NO_HEARTBEAT,
        "no ping since start at 2026-11-20 12:00 (expected by 06:30)",
    )


def test_token_from_file_is_read_and_kept_out_of_the_repr(tmp_path: Path) -> None:
    """``token_file`` is read at load; the token shows in no repr or dump."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    check = heartbeat(token=None, token_file=str(path))
    assert check.secret() == TOKEN
    assert TOKEN not in repr(check) and TOKEN not in str(check.model_dump())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"token": "short"}, "16 to 256"),
        ({"token": "has spaces in it, sadly"}, "16 to 256"),
        ({"token": None}, "exactly one of token"),
        ({"schedule": "0 6 * * 1-5", "every": "1h"}, "exactly one of every or schedule"),
        ({"every": None}, "exactly one of every or schedule"),
        ({"schedule": "0 25 * * *", "every": None}, "hour"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"working_days": ["monday"]}, "working_days"),
    ],
)
def test_invalid_heartbeat_settings_are_rejected(values: dict[str, Any], message: str) -> None:
    """Short or odd tokens, a missing or double timing rule, or a bad cron or zone fail."""
    with pytest.raises(pydantic.ValidationError, match=message):
        heartbeat(**values)


CONFIG = """\
daemon: {{state_dir: {state}, listen: "127.0.0.1:0", timezone: UTC}}
services:
  - {{id: edi, name: EDI}}
checks:
  - {{id: edi-export, service: edi, type: heartbeat, token: "${{FOREWARN_TEST_TOKEN}}",
     every: 1h, grace: 10m, working_days: [mon, tue, wed, thu, fri], holidays: [2026-12-25]}}
"""


async def test_daemon_serves_the_hooks_of_its_heartbeat_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running daemon accepts pings for a token taken from ${ENV} and refuses others."""
    monkeypatch.setenv("FOREWARN_TEST_TOKEN", TOKEN)
    path = tmp_path / "checks.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state"), encoding="utf-8")
    daemon = Daemon(load_config(path))
    await daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.port}"
        assert await post(f"{base}/heartbeat/{TOKEN}") == (200, "ok\n")
        assert (await post(f"{base}/heartbeat/{OTHER}"))[0] == 404
        assert daemon.probe_context.heartbeats.last_ping("edi-export") is not None
    finally:
        await daemon.stop()
