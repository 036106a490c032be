"""The transaction probe: ordered steps against a real aiohttp target on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest
from aiohttp import web
from probe_servers import NOW, context, settings

from monitor.probes import PROBES
from monitor.probes.base import Reason
from monitor.probes.transaction import TransactionCheck, TransactionProbe

CREATE = {
    "name": "create",
    "method": "POST",
    "url": "{base}/labels",
    "body": '{"weight": 0.5}',
    "expect": {"status": [201]},
    "extract": {"parcel": "$.parcelNumber"},
}
TRACK = {
    "name": "track",
    "url": "{base}/track/{{{{ parcel }}}}",
    "headers": {"X-Parcel": "{{{{parcel}}}}"},
    "expect": {"json": {"$.status": "OK"}},
}


async def labels(request: web.Request) -> web.Response:
    """Create a label; the parcel number depends on the body, to show it was sent."""
    body = await request.json()
    number = "6A123" if body == {"weight": 0.5} else "6A000"
    return web.json_response({"parcelNumber": number, "labelId": "L1"}, status=201)


async def track(request: web.Request) -> web.Response:
    """Known parcel in the path and header: OK; anything else: 404."""
    parcel = request.match_info["parcel"]
    if parcel == "6A123" and request.headers.get("X-Parcel") == parcel:
        return web.json_response({"status": "OK", "parcel": parcel})
    return web.json_response({"status": "UNKNOWN", "seen": parcel}, status=404)


async def page(request: web.Request) -> web.Response:
    """A text page carrying a parcel number and a tricky value."""
    return web.Response(text="Your parcel: 6A123. Ref: a/b {{ parcel }} ok")


async def echo(request: web.Request) -> web.Response:
    """Repeat the raw path and body."""
    return web.Response(text=f"{request.raw_path} {await request.text()}")


async def slow(request: web.Request) -> web.Response:
    """Answer too late for the test's timeout."""
    await asyncio.sleep(0.1)
    await asyncio.sleep(0.1)
    await asyncio.sleep(0.1)
    return web.Response(text="late")


@pytest.fixture
async def base() -> AsyncIterator[str]:
    """The base URL of the running carrier API."""
    app = web.Application()
    app.router.add_post("/labels", labels)
    app.router.add_get("/track/{parcel}", track)
    app.router.add_get("/page", page)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def probe() -> AsyncIterator[TransactionProbe]:
    """A probe closed after the test."""
    instance = TransactionProbe(context())
    yield instance
    await instance.close()


def transaction(base: str, *steps: dict[str, Any], **values: Any) -> TransactionCheck:
    """A validated transaction whose step texts may name ``{base}``."""
    filled = [_fill(step, base) for step in steps]
    return TransactionCheck.model_validate(settings(type="transaction", steps=filled, **values))


def _fill(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base).replace("{{{{", "{{").replace("}}}}", "}}")
    if isinstance(value, dict):
        return {key: _fill(item, base) for key, item in value.items()}
    return value


def test_transaction_is_registered_with_its_settings_and_factory() -> None:
    """The registry maps ``transaction`` to this module's settings model and probe."""
    assert PROBES["transaction"].settings is TransactionCheck
    assert isinstance(PROBES["transaction"].factory(context()), TransactionProbe)


async def test_label_then_tracking_of_its_parcel_is_ok(base: str, probe: TransactionProbe) -> None:
    """The parcel number extracted from step 1 reaches step 2's url and header."""
    result = await probe.run(transaction(base, CREATE, TRACK), NOW)
    assert result.ok, result.detail
    assert {"connect", "processing", "transfer"} <= set(result.phases)


async def test_failing_step_is_named_in_the_detail(base: str, probe: TransactionProbe) -> None:
    """A failure in step 2 reads ``step 2 (track): …`` with that step's own reason."""
    bad_create = {**CREATE, "body": '{"weight": 9}'}
    result = await probe.run(transaction(base, bad_create, TRACK), NOW)
    assert (result.reason, result.detail) == (
        Reason.HTTP_STATUS,
        "step 2 (track): status 404, expected 200",
    )


async def test_missing_json_value_to_extract_fails_step_one(
    base: str, probe: TransactionProbe
) -> None:
    """An extraction path absent from the answer fails that step with json_mismatch."""
    create = {**CREATE, "extract": {"parcel": "$.tracking.number"}}
    result = await probe.run(transaction(base, create, TRACK), NOW)
    assert (result.reason, result.detail) == (
        Reason.JSON_MISMATCH,
        "step 1 (create): cannot extract parcel: $.tracking.number missing",
    )


async def test_regex_extraction_takes_the_first_group(base: str, probe: TransactionProbe) -> None:
    """``{regex: …}`` extracts its first group from a text answer."""
    read = {"name": "read", "url": "{base}/page", "extract": {"parcel": {"regex": r"(6A\d+)"}}}
    assert (await probe.run(transaction(base, read, TRACK), NOW)).ok


async def test_regex_without_match_fails_with_body_mismatch(
    base: str, probe: TransactionProbe
) -> None:
    """A regex that finds nothing fails the step with body_mismatch."""
    read = {"name": "read", "url": "{base}/page", "extract": {"parcel": {"regex": r"ZZ\d+"}}}
    result = await probe.run(transaction(base, read, TRACK), NOW)
    assert result.reason is Reason.BODY_MISMATCH
    assert result.detail == "step 1 (read): cannot extract parcel: no match for 'ZZ\\\\d+'"


async def test_values_are_substituted_once_and_never_evaluated(
    base: str, probe: TransactionProbe
) -> None:
    """An extracted ``{{ parcel }}`` stays literal; in a url it is percent-encoded."""
    read = {
        "name": "read",
        "url": "{base}/page",
        "extract": {"ref": {"regex": r"Ref: (.*) ok"}},
    }
    show = {
        "name": "show",
        "method": "POST",
        "url": "{base}/echo/{{{{ ref }}}}",
        "body": "[{{{{ref}}}}] {{ 7*7 }}",
        "expect": {"body_contains": "/echo/a%2Fb%20%7B%7B%20parcel%20%7D%7D [a/b {{ parcel }}]"},
    }
    result = await probe.run(transaction(base, read, show), NOW)
    assert result.ok, result.detail


async def test_step_timeout_names_the_step(base: str, probe: TransactionProbe) -> None:
    """The whole transaction shares ``timeout``; the step it runs out in is named."""
    wait = {"name": "wait", "url": "{base}/slow"}
    result = await probe.run(transaction(base, CREATE, wait, timeout="200ms"), NOW)
    assert (result.reason, result.detail) == (
        Reason.TIMEOUT,
        "step 2 (wait): no response within 200ms",
    )


async def test_slow_step_makes_the_transaction_degraded(base: str, probe: TransactionProbe) -> None:
    """A step slower than its ``expect.max_latency`` makes an ok run degraded, naming it."""
    wait = {"name": "wait", "url": "{base}/slow", "expect": {"max_latency": "50ms"}}
    result = await probe.run(transaction(base, CREATE, wait), NOW)
    assert result.ok and result.degraded
    assert result.detail.startswith("step 2 (wait): latency 0.")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([TRACK], "uses parcel, not extracted by an earlier step"),
        ([TRACK, CREATE], "uses parcel"),
        ([{**CREATE, "extract": {"bad-name": "$.a"}}], "extract"),
        ([{**CREATE, "extract": {"p": "$.a["}}], "JSON path"),
        ([{**CREATE, "url": "ftp://x"}], "http:// or https://"),
        ([], "at least 1"),
    ],
)
def test_invalid_transactions_are_rejected(steps: list[dict[str, Any]], message: str) -> None:
    """Variables used before extraction, bad names or paths, and empty steps fail."""
    with pytest.raises(pydantic.ValidationError, match=message):
        transaction("http://127.0.0.1", *steps)
