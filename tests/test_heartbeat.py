"""The dead-man's switch against a real HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import structlog
import trustme
from aiohttp import web

from monitor.runtime.heartbeat import Heartbeat, origin
from tests.probe_servers import closed_port, endless, serve, server_context, silent_server
from tests.waiting import until

TOKEN = "0f1e2d3c-secret-uuid"


@dataclass
class Switch:
    """A Healthchecks-like endpoint whose answer the test chooses, recording every ping."""

    base: str = ""
    status: int = 200
    pings: list[str] = field(default_factory=list)  # method and path of each request


def switch_app(state: Switch) -> web.Application:
    """The endpoint: /ping/<token> answers ``state.status``; /endless never ends its body."""

    async def ping(request: web.Request) -> web.Response:
        state.pings.append(f"{request.method} {request.path_qs}")
        if 300 <= state.status < 400:
            return web.Response(status=state.status, headers={"Location": f"/ping/{TOKEN}"})
        return web.Response(status=state.status, text="OK")

    app = web.Application()
    app.router.add_get(f"/ping/{TOKEN}", ping)
    app.router.add_get("/endless", endless)
    return app


@pytest.fixture
async def switch() -> AsyncIterator[Switch]:
    """A running switch on 127.0.0.1."""
    state = Switch()
    async with serve(switch_app(state)) as base:
        state.base = base
        yield state


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session the daemon would lend the heartbeat."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hc-ping.com/{TOKEN}", "https://hc-ping.com"),
        (f"https://user:pw@hc.example.org:8443/ping/{TOKEN}?k=v", "https://hc.example.org"),
        ("not a url", "invalid-url"),
    ],
)
def test_only_the_scheme_and_host_of_the_url_are_shown(url: str, shown: str) -> None:
    """The path, query and credentials hold the secret: they are never shown."""
    assert origin(url) == shown


async def test_it_pings_the_url_every_interval_with_a_get(
    switch: Switch, session: aiohttp.ClientSession
) -> None:
    """run() sends a GET at once and then every interval, until cancelled."""
    beat = Heartbeat(f"{switch.base}/ping/{TOKEN}?rid=1", interval=0.02, session=session)
    task = asyncio.create_task(beat.run())
    await until(lambda: len(switch.pings) >= 3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert set(switch.pings) == {f"GET /ping/{TOKEN}?rid=1"}
    assert beat.failures == 0


async def test_a_failure_episode_is_logged_once_and_its_end_once_without_the_token(
    switch: Switch, session: aiohttp.ClientSession
) -> None:
    """Three failed pings are one ``heartbeat_failing`` event; the recovery one more."""
    ticks = iter(range(100))
    beat = Heartbeat(
        f"{switch.base}/ping/{TOKEN}", interval=1.0, session=session, clock=lambda: next(ticks)
    )
    switch.status = 503
    with structlog.testing.capture_logs() as logs:
        assert [await beat.ping() for _ in range(3)] == [False, False, False]
        switch.status = 200
        assert [await beat.ping() for _ in range(2)] == [True, True]
    assert [e["event"] for e in logs] == ["heartbeat_failing", "heartbeat_recovered"]
    assert logs[0]["error"] == "HTTP 503" and logs[0]["target"] == "http://127.0.0.1"
    assert logs[1]["failed_for"] == 3  # one clock tick a ping: from the first failure (0)
    assert TOKEN not in repr(logs)
    assert (beat.pings, beat.failures) == (5, 3)


async def test_a_redirect_is_a_failure_and_is_not_followed(
    switch: Switch, session: aiohttp.ClientSession
) -> None:
    """The switch's URL is given as it is: a 3xx says it is wrong, and is not followed."""
    switch.status = 302
    beat = Heartbeat(f"{switch.base}/ping/{TOKEN}", interval=1.0, session=session)
    assert await beat.ping() is False
    assert len(switch.pings) == 1


async def test_an_unreachable_switch_never_stops_the_loop(session: aiohttp.ClientSession) -> None:
    """Refused connections fail each ping; run() keeps going and logs the episode once."""
    beat = Heartbeat(f"http://127.0.0.1:{closed_port()}/ping/x", interval=0.01, session=session)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(beat.run())
        await until(lambda: beat.failures >= 3)
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [e["event"] for e in logs] == ["heartbeat_failing"]
    assert logs[0]["error"] == "ClientConnectorError"


async def test_a_silent_switch_fails_at_the_timeout(session: aiohttp.ClientSession) -> None:
    """A server that never answers costs one ping its timeout, no more."""
    async with silent_server() as port:
        beat = Heartbeat(f"http://127.0.0.1:{port}/", interval=1.0, session=session, timeout=0.05)
        assert await beat.ping() is False
    assert beat.failing_since is not None


async def test_an_endless_body_is_read_only_up_to_the_cap(
    switch: Switch, session: aiohttp.ClientSession
) -> None:
    """The answer's body is not used: a few bytes are read and the ping succeeds."""
    beat = Heartbeat(f"{switch.base}/endless", interval=1.0, session=session, timeout=1.0)
    assert await beat.ping() is True


async def test_the_switchs_certificate_is_verified(session: aiohttp.ClientSession) -> None:
    """An untrusted certificate fails the ping; the same server trusted answers."""
    authority = trustme.CA()
    state = Switch()
    async with serve(switch_app(state), server_context(authority.issue_cert("127.0.0.1"))) as base:
        url = f"{base}/ping/{TOKEN}"
        with structlog.testing.capture_logs() as logs:
            assert await Heartbeat(url, interval=1.0, session=session).ping() is False
        trusted = ssl.create_default_context()
        authority.configure_trust(trusted)
        assert await Heartbeat(url, interval=1.0, session=session, tls=trusted).ping() is True
    assert logs[0]["error"] == "ClientConnectorCertificateError"
    assert state.pings == [f"GET /ping/{TOKEN}"]
