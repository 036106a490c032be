"""The http probe against real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
import time
import tracemalloc
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest
import trustme
from aiohttp import web
from probe_servers import (
    NOW,
    bomb,
    closed_port,
    context,
    endless,
    open_fds,
    serve,
    server_context,
    settings,
    settle_fds,
    silent_server,
)

from monitor.probes import PROBES
from monitor.probes.base import Reason
from monitor.probes.http import HttpCheck, HttpProbe

pytestmark = pytest.mark.both_loops  # the client runs on asyncio's loop and on uvloop's

CONTEXT = context()
HANG_S = 30.0  # how long a test lets a silent server hold a probe deaf to its own deadline


def http_check(url: str, **values: Any) -> HttpCheck:
    """Build a validated check with the base fields every check carries."""
    return HttpCheck.model_validate(
        settings(id="shop-web", service="shop", type="http", url=url, **values)
    )


async def ok(request: web.Request) -> web.Response:
    """A healthy tracking answer."""
    return web.Response(text='{"parcelNumber": "6A0", "status": "OK"}')


async def status(request: web.Request) -> web.Response:
    """Answer with the status named in the path."""
    return web.Response(status=int(request.match_info["code"]), text="unavailable")


async def json_body(request: web.Request) -> web.Response:
    """A JSON document whose status is not OK."""
    return web.json_response({"status": "KO", "a": {"b": [{"c": 1}]}, "flag": True})


async def slow(request: web.Request) -> web.Response:
    """A correct answer that takes about 150 ms."""
    await asyncio.sleep(0.1)
    await asyncio.sleep(0.05)
    return web.Response(text="ok")


async def echo(request: web.Request) -> web.Response:
    """Repeat the method and body, to show what the probe sent."""
    return web.Response(text=f"{request.method} {await request.text()}")


@contextlib.asynccontextmanager
async def serve_app(tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Run the test app on an ephemeral port and yield its base URL."""
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/json", json_body)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/endless", endless)
    app.router.add_get("/bomb", bomb)
    async with serve(app, tls) as url:
        yield url


@pytest.fixture
async def base() -> AsyncIterator[str]:
    """The base URL of a running test app."""
    async with serve_app() as url:
        yield url


@pytest.fixture
async def probe() -> AsyncIterator[HttpProbe]:
    """A probe closed after the test, as the daemon would close it."""
    instance = HttpProbe(CONTEXT)
    yield instance
    await instance.close()


def test_http_is_registered_with_its_settings_and_factory() -> None:
    """The registry maps ``http`` to this module's settings model and probe."""
    assert PROBES["http"].settings is HttpCheck
    assert isinstance(PROBES["http"].factory(CONTEXT), HttpProbe)


def test_invalid_json_path_is_rejected_by_the_settings() -> None:
    """A malformed JSON path in ``expect.json`` fails validation, not a probe run."""
    with pytest.raises(pydantic.ValidationError, match="JSON path"):
        http_check("http://127.0.0.1/", expect={"json": {"$.a[": 1}})


async def test_200_with_default_expectations_is_ok(base: str, probe: HttpProbe) -> None:
    """A 200 answer satisfies the default expectation, stamps the given time and its duration."""
    started = time.monotonic()
    result = await probe.run(http_check(f"{base}/ok"), NOW)
    elapsed = time.monotonic() - started
    assert result.ok and not result.degraded
    assert result.reason is None and result.detail == ""
    assert result.check_id == "shop-web" and result.at == NOW
    assert 0 < result.duration_s <= elapsed  # in seconds, and the run's own time


async def test_status_outside_expected_list_fails_with_http_status(
    base: str, probe: HttpProbe
) -> None:
    """A 503 when 200 is expected fails with http_status and names both codes."""
    result = await probe.run(http_check(f"{base}/status/503"), NOW)
    assert not result.ok
    assert result.reason is Reason.HTTP_STATUS
    assert result.detail == "status 503, expected 200"


async def test_status_in_expected_list_is_ok(base: str, probe: HttpProbe) -> None:
    """Any status listed in ``expect.status`` counts as healthy."""
    result = await probe.run(http_check(f"{base}/status/204", expect={"status": [200, 204]}), NOW)
    assert result.ok


async def test_missing_substring_fails_with_body_mismatch(base: str, probe: HttpProbe) -> None:
    """A body without ``body_contains`` fails with body_mismatch quoting the text sought."""
    check = http_check(f"{base}/ok", expect={"body_contains": "deliveryDate"})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.BODY_MISMATCH
    assert result.detail == "body does not contain 'deliveryDate'"


async def test_present_substring_is_ok(base: str, probe: HttpProbe) -> None:
    """A body containing ``body_contains`` passes."""
    check = http_check(f"{base}/ok", expect={"body_contains": "parcelNumber"})
    assert (await probe.run(check, NOW)).ok


async def test_json_values_equal_to_expectations_are_ok(base: str, probe: HttpProbe) -> None:
    """Every ``expect.json`` path holding its expected value passes."""
    check = http_check(
        f"{base}/json", expect={"json": {"$.status": "KO", "$.a.b[0].c": 1, "$.flag": True}}
    )
    assert (await probe.run(check, NOW)).ok


async def test_json_value_mismatch_fails_with_json_mismatch(base: str, probe: HttpProbe) -> None:
    """A differing value fails with json_mismatch showing what was seen and expected."""
    check = http_check(f"{base}/json", expect={"json": {"$.status": "OK"}})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.JSON_MISMATCH
    assert result.detail == "$.status is 'KO', expected 'OK'"


async def test_json_missing_path_fails_with_json_mismatch(base: str, probe: HttpProbe) -> None:
    """A path absent from the document fails with json_mismatch naming the path."""
    check = http_check(f"{base}/json", expect={"json": {"$.a.x": 1}})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.JSON_MISMATCH
    assert result.detail == "$.a.x missing"


async def test_json_boolean_never_equals_a_number(base: str, probe: HttpProbe) -> None:
    """``true`` in the body does not satisfy an expected ``1``."""
    check = http_check(f"{base}/json", expect={"json": {"$.flag": 1}})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.JSON_MISMATCH
    assert result.detail == "$.flag is true, expected 1"


async def test_non_json_body_fails_with_json_mismatch(base: str, probe: HttpProbe) -> None:
    """A body that is not JSON fails with json_mismatch."""
    check = http_check(f"{base}/status/200", expect={"json": {"$.status": "OK"}})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.JSON_MISMATCH
    assert result.detail == "body is not JSON"


async def test_slow_success_is_ok_but_degraded(base: str, probe: HttpProbe) -> None:
    """A success slower than ``max_latency`` is ok, degraded, and says by how much."""
    result = await probe.run(http_check(f"{base}/slow", expect={"max_latency": "50ms"}), NOW)
    assert result.ok and result.degraded
    assert result.reason is None
    assert result.detail.startswith("latency 0.") and result.detail.endswith("s above 50ms")


async def test_method_and_body_are_sent(base: str, probe: HttpProbe) -> None:
    """The configured method and request body reach the server."""
    check = http_check(
        f"{base}/echo", method="POST", body="ping", expect={"body_contains": "POST ping"}
    )
    assert (await probe.run(check, NOW)).ok


async def test_details_never_repeat_request_secrets(base: str, probe: HttpProbe) -> None:
    """Neither a failing status nor a refused connection echoes headers, body or query."""
    secret = {"headers": {"Authorization": "Bearer s3cret"}, "body": "s3cret", "method": "POST"}
    for url in (f"{base}/status/503?token=s3cret", f"http://127.0.0.1:{closed_port()}/?t=s3cret"):
        result = await probe.run(http_check(url, **secret), NOW)
        assert not result.ok
        assert "s3cret" not in result.detail


async def test_closed_port_fails_with_connect_refused(probe: HttpProbe) -> None:
    """Nothing listening on the port fails with connect_refused."""
    result = await probe.run(http_check(f"http://127.0.0.1:{closed_port()}/"), NOW)
    assert result.reason is Reason.CONNECT_REFUSED
    assert result.detail.startswith("connection refused by 127.0.0.1:")


async def test_server_that_never_answers_fails_with_timeout_in_time(probe: HttpProbe) -> None:
    """A server that accepts but never answers fails with timeout within the timeout."""
    async with silent_server() as port:
        check = http_check(f"http://127.0.0.1:{port}/", timeout="300ms")
        started = time.monotonic()
        result = await asyncio.wait_for(probe.run(check, NOW), HANG_S)
        elapsed = time.monotonic() - started
    assert result.reason is Reason.TIMEOUT
    assert result.detail == "no response within 300ms"
    # Ended by its own deadline, not the server: a late timer on a busy machine cannot make
    # 300 ms look like the server's hang.
    assert 0.3 <= elapsed < HANG_S / 2
    assert "connect" in result.phases


async def test_endless_chunked_body_fails_with_too_large(base: str, probe: HttpProbe) -> None:
    """A body that never ends stops being read at ``max_body`` and fails with too_large."""
    check = http_check(f"{base}/endless", max_body=256 * 1024, expect={"body_contains": "y"})
    result = await probe.run(check, NOW)
    assert result.reason is Reason.TOO_LARGE
    assert result.detail == "body larger than 262144 bytes"


async def test_gzip_bomb_fails_with_too_large_without_inflating_it(
    base: str, probe: HttpProbe
) -> None:
    """64 KiB of gzip inflating to 64 MiB is cut at ``max_body`` with little memory."""
    check = http_check(f"{base}/bomb", expect={"body_contains": "parcel"})
    tracemalloc.start()
    try:
        result = await probe.run(check, NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.reason is Reason.TOO_LARGE
    assert peak < 8 * 1024 * 1024


async def test_phases_are_recorded_for_an_ip_literal(base: str, probe: HttpProbe) -> None:
    """Connect, processing and transfer are measured; an IP literal needs no resolve."""
    result = await probe.run(http_check(f"{base}/ok"), NOW)
    assert set(result.phases) == {"connect", "processing", "transfer"}
    assert all(value >= 0 for value in result.phases.values())
    assert sum(result.phases.values()) <= result.duration_s


async def test_resolve_phase_is_recorded_for_a_host_name(base: str, probe: HttpProbe) -> None:
    """A host name is resolved on every run and the resolution is timed."""
    port = base.rsplit(":", 1)[1]
    for _ in range(2):
        result = await probe.run(http_check(f"http://localhost:{port}/ok"), NOW)
        assert result.ok, result.detail
        assert {"resolve", "connect", "processing", "transfer"} <= set(result.phases)
        assert 0 <= result.phases["resolve"] < result.duration_s


async def test_unresolvable_host_fails_with_dns(probe: HttpProbe) -> None:
    """A name under ``.invalid`` never resolves, which fails with dns."""
    result = await probe.run(http_check("http://forewarn-probe.invalid/"), NOW)
    assert result.reason is Reason.DNS
    assert "forewarn-probe.invalid" in result.detail


async def test_untrusted_certificate_fails_with_tls(probe: HttpProbe) -> None:
    """A certificate from a CA the default context does not trust fails with tls."""
    authority = trustme.CA()
    tls = server_context(authority.issue_cert("127.0.0.1", "localhost"))
    async with serve_app(tls) as url:
        result = await probe.run(http_check(f"{url}/ok"), NOW)
    assert result.reason is Reason.TLS
    assert "certificate" in result.detail


async def test_many_failures_leak_no_file_descriptors(probe: HttpProbe) -> None:
    """300 refused connections and 300 timeouts leave the descriptor count unchanged.

    Refusals have the whole HANG_S, so that a busy machine cannot make them time out. 300
    connects at once take a good part of the 300 ms the others have, so a busy machine lets
    their deadline catch some still connecting: a timeout all the same, as bound to close.
    """
    refused = http_check(f"http://127.0.0.1:{closed_port()}/", timeout=HANG_S)
    async with silent_server() as port:
        hung = http_check(f"http://127.0.0.1:{port}/", timeout="300ms")
        await asyncio.gather(probe.run(refused, NOW), probe.run(hung, NOW))
        with warnings.catch_warnings(record=True) as caught:
            # A socket freed only by garbage collection warns; closing it ourselves does not.
            warnings.simplefilter("always", ResourceWarning)
            before = open_fds()
            results = await asyncio.gather(
                *(probe.run(refused, NOW) for _ in range(300)),
                *(probe.run(hung, NOW) for _ in range(300)),
            )
            # The server side closes its ends as it sees each EOF, a few loop turns later.
            after = await settle_fds(before)
            gc.collect()
    assert {result.reason for result in results[:300]} == {Reason.CONNECT_REFUSED}
    assert {result.reason for result in results[300:]} <= {Reason.TIMEOUT, Reason.CONNECT_TIMEOUT}
    assert abs(after - before) <= 3
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_custom_headers_never_follow_a_redirect_to_another_origin(
    probe: HttpProbe,
) -> None:
    """X-Api-Key goes to the check's origin, and again when it comes back, never elsewhere."""
    seen: list[tuple[str, str | None]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((f"{request.host}{request.path}", request.headers.get("X-Api-Key")))
        target = request.query.get("to")
        if target:
            raise web.HTTPFound(target)
        return web.Response(text="ok")

    elsewhere = web.Application()
    elsewhere.router.add_get("/{tail:.*}", record)
    home = web.Application()
    home.router.add_get("/{tail:.*}", record)
    async with serve(elsewhere) as other, serve(home) as base:
        back = f"{base}/back"
        hop = f"{other}/away?to={back}"
        check = http_check(f"{base}/start?to={hop}", headers={"X-Api-Key": "s3cret-key"})
        result = await probe.run(check, NOW)
    assert result.ok, result.detail
    assert [key for _, key in seen] == ["s3cret-key", None, "s3cret-key"]
    assert seen[1][0].endswith("/away")
