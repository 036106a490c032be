"""Operator API abuse against a running Daemon: missing and guessed tokens, huge and broken bodies.

The daemon is the real one (its own app, body limit, token file and Desk) listening on
127.0.0.1; its two checks target a closed port, so an incident opens for the writes to act on.
Log events are captured with ``structlog.testing.capture_logs``.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from monitor.config.load import load_config
from monitor.daemon import Daemon
from monitor.web.app import MAX_BODY
from monitor.web.auth import MAX_FAILURES
from tests.waiting import until

WRITE = "ops-write-token-0123456789abcdef"
READ = "grafana-read-token-0123456789abcd"
WRONG = "wrong-token-0123456789abcdefghijk"
TEN_MB = 10 * 1024 * 1024
AIOHTTP_LINGER_S = 10.0  # aiohttp's default lingering_time: what LINGER_S replaces

CHECKS_YAML = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", api_tokens_file: "{tokens}"}}
defaults: {{interval: 200ms, timeout: 1s, retry_interval: 100ms, failure_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "http://127.0.0.1:9/t"}}
  - {{id: labels-ws, service: labels, type: tcp, host: 127.0.0.1, port: 9}}
customers:
  - {{id: acme, name: ACME, email: ops@acme.example, services: [tracking, labels]}}
notices: {{from: "Support <support@example.net>", customer_delay: 0s}}
"""
WINDOW = {
    "id": "release-42",
    "services": ["labels"],
    "start": "2030-01-01T10:00:00+01:00",
    "end": "2030-01-01T12:00:00+01:00",
    "summary": {"fr": "Mise à jour", "en": "Upgrade"},
}

Logs = list[MutableMapping[str, Any]]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Every structlog event emitted during the test, as dicts."""
    with structlog.testing.capture_logs() as captured:
        yield captured


async def start_daemon(folder: Path) -> Daemon:
    """A started daemon with a write and a read-only token, its checks failing."""
    tokens = folder / "tokens"
    tokens.write_text(f"ops:{WRITE}\ngrafana:{READ}:read\n", encoding="utf-8")
    path = folder / "checks.yaml"
    path.write_text(CHECKS_YAML.format(state=folder / "state", tokens=tokens), encoding="utf-8")
    running = Daemon(load_config(path))
    await running.start()
    return running


@pytest.fixture
async def daemon(tmp_path: Path, logs: Logs) -> AsyncIterator[Daemon]:
    """A running daemon with an open tracking incident to act on."""
    running = await start_daemon(tmp_path)
    await until(lambda: {i.service_id for i in running.engine.open.values()} >= {"tracking"})
    yield running
    await running.stop()


def url(daemon: Daemon, path: str) -> str:
    """The daemon's address for ``path``."""
    return f"http://127.0.0.1:{daemon.port}{path}"


def incident_id(daemon: Daemon) -> str:
    """The open tracking incident."""
    return next(i.id for i in daemon.engine.open.values() if i.service_id == "tracking")


def writes(daemon: Daemon) -> list[tuple[str, str]]:
    """Every write endpoint, as (method, path)."""
    incident = incident_id(daemon)
    return [
        ("POST", f"/api/v1/incidents/{incident}/identify"),
        ("POST", f"/api/v1/incidents/{incident}/update"),
        ("POST", f"/api/v1/incidents/{incident}/resolve"),
        ("POST", f"/api/v1/incidents/{incident}/postmortem"),
        ("POST", "/api/v1/maintenance"),
        ("POST", "/api/v1/maintenance/release-42/extend"),
        ("DELETE", "/api/v1/maintenance/release-42"),
    ]


async def send(
    daemon: Daemon,
    method: str,
    path: str,
    token: str | None = None,
    *,
    source: str = "127.0.0.1",
    header: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any, dict[str, str]]:
    """One request from ``source``: status, JSON body (or text) and headers."""
    headers = {"Authorization": header or f"Bearer {token}"} if token or header else {}
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, url(daemon, path), headers=headers, **kwargs) as response,
    ):
        text = await response.text()
        is_json = response.content_type == "application/json"
        body = await response.json() if is_json else text
        return response.status, body, dict(response.headers)


def audits(logs: Logs) -> Logs:
    """The audit events logged so far."""
    return [e for e in logs if e["event"] == "audit"]


def assert_no_secret(logs: Logs) -> None:
    """No token value in any event, at any depth."""
    text = repr(logs)
    assert WRITE not in text and READ not in text and WRONG not in text


async def test_a_write_without_a_token_is_401_and_changes_nothing(
    daemon: Daemon, logs: Logs
) -> None:
    """No header, an empty bearer or another scheme: 401 with a challenge, and no audit event."""
    before = daemon.engine.open[incident_id(daemon)]
    for method, path in writes(daemon):
        for header in (None, "Bearer ", "Basic b3BzOnB3", "bearer"):
            status, body, headers = await send(
                daemon, method, path, header=header, json={"message": "x"}
            )
            assert status == 401, (method, path, header)
            assert headers["WWW-Authenticate"] == 'Bearer realm="forewarn"'
            assert "bearer token is required" in body["error"]
    assert daemon.engine.open[incident_id(daemon)] == before
    assert audits(logs) == []


async def test_repeated_wrong_tokens_get_429_but_the_right_one_still_passes(
    daemon: Daemon, logs: Logs
) -> None:
    """After MAX_FAILURES wrong tokens the address gets 429 for bad tokens; a valid one passes."""
    path = f"/api/v1/incidents/{incident_id(daemon)}/identify"
    before = daemon.engine.open[incident_id(daemon)].status
    for _ in range(MAX_FAILURES):
        status, body, _ = await send(daemon, "POST", path, WRONG, json={"message": "x"})
        assert (status, body) == (401, {"error": "invalid token"})
    status, body, headers = await send(daemon, "POST", path, WRONG, json={"message": "x"})
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    assert "too many bad tokens" in body["error"]
    status, _, _ = await send(daemon, "GET", "/api/v1/maintenance", READ)
    assert status == 200, "a valid token from the throttled address passes"
    status, _, _ = await send(daemon, "GET", "/api/v1/maintenance", WRONG, source="127.0.0.2")
    assert status == 401, "another address is not throttled"
    bad = [e for e in logs if e["event"] == "api_bad_token"]
    assert len(bad) == MAX_FAILURES + 1
    assert {e["client"] for e in bad} == {"127.0.0.1", "127.0.0.2"}
    assert audits(logs) == [] and daemon.engine.open[incident_id(daemon)].status is before
    assert_no_secret(logs)


async def test_a_10_mb_body_is_413_quickly_and_the_daemon_carries_on(
    daemon: Daemon, logs: Logs
) -> None:
    """10 MB to a write endpoint, sized or chunked: a JSON 413 naming the limit, cheaply."""
    payload = b'{"message": "' + b"x" * TEN_MB + b'"}'

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 1024 * 1024):
            yield payload[start : start + 1024 * 1024]

    incident = incident_id(daemon)
    path = f"/api/v1/incidents/{incident}/update"
    timeline = len(daemon.desk.timeline(incident))
    for data in (io.BytesIO(payload), pieces()):
        started, cpu = time.monotonic(), time.process_time()
        status, body, _ = await send(daemon, "POST", path, WRITE, data=data)
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        assert status == 413
        assert body == {"error": f"the body is larger than {MAX_BODY} bytes"}
        # The work (client and daemon share this process), which a busy machine cannot
        # inflate; and no wait for the client to give up (aiohttp's own linger is 10 s).
        assert cpu < 1.0, f"413 after {cpu:.2f} s of CPU"
        assert seconds < AIOHTTP_LINGER_S / 2, f"413 after {seconds:.2f} s"
    # Without a token the body is not even read: 401 first.
    status, _, _ = await send(daemon, "POST", "/api/v1/maintenance", data=io.BytesIO(payload))
    assert status == 401
    found = [(e["operator"], e["action"], e["status"]) for e in audits(logs)]
    assert found == [("ops", "incident.update", 413)] * 2
    assert len(daemon.desk.timeline(incident)) == timeline, "no update was recorded"
    status, health, _ = await send(daemon, "GET", "/healthz")
    assert status == 200 and health["status"] == "ok"


async def test_an_abandoned_oversized_body_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    """A client that sends part of a 10 MB body and goes quiet delays stop() by ~1 s, not 10 s."""
    running = await start_daemon(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(
            b"POST /api/v1/maintenance HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {WRITE}\r\nContent-Length: {TEN_MB}\r\n\r\n".encode()
            + b"{" * (2 * MAX_BODY)
        )
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 413 ")
    finally:
        started = time.monotonic()
        await running.stop()
    seconds = time.monotonic() - started
    writer.close()
    # LINGER_S (1 s) at most, however late a busy machine runs it; not aiohttp's own 10 s.
    assert seconds < AIOHTTP_LINGER_S / 2, f"stop took {seconds:.2f} s"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is not valid JSON"),
        (b"{", "the body is not valid JSON"),
        (b"message=hello", "the body is not valid JSON"),
        (b'{"message": "caf\xe9"}', "the body is not valid JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "the body is not valid JSON"),
        (b'["message"]', "the body must be a JSON object"),
        (b'"hello"', "the body must be a JSON object"),
        (b'{"message": 5}', "message: expected a non-empty string or {fr: …, en: …}"),
        (b'{"message": NaN}', "NaN is not a JSON number"),
        (b'{"message": {"de": "x"}}', "message: unknown language 'de'; expected fr or en"),
        (b'{"message": ' + b"9" * 5000 + b"}", "a number has more than 32 characters"),
        (
            b'{"message": "\\ud800"}',
            "the body has invalid Unicode (a lone surrogate such as \\ud800)",
        ),
        (b'{"message": "  "}', "message: expected a non-empty string"),
        (b'{"message": "x", "notify": false}', "unknown key 'notify'"),
    ],
    ids=[
        "empty",
        "truncated",
        "form",
        "latin1",
        "nested_30000",
        "array",
        "string",
        "number",
        "nan",
        "language",
        "digits_5000",
        "lone_surrogate",
        "blank",
        "unknown_key",
    ],
)
async def test_invalid_json_is_400_with_a_message(
    daemon: Daemon, logs: Logs, body: bytes, message: str
) -> None:
    """A broken or wrong-shaped body gets 400 and an error saying what is wrong, not a 500."""
    path = f"/api/v1/incidents/{incident_id(daemon)}/identify"
    status, answer, _ = await send(daemon, "POST", path, WRITE, data=body)
    assert (status, answer) == (400, {"error": message})
    [audit] = audits(logs)
    assert (audit["action"], audit["status"]) == ("incident.identify", 400)


async def test_an_id_with_a_trailing_newline_is_refused_whole(daemon: Daemon) -> None:
    """``release-42\\n`` is not an id: a 400, not a window whose Location header breaks."""
    body = {**WINDOW, "id": "release-42\n"}
    status, answer, _ = await send(daemon, "POST", "/api/v1/maintenance", WRITE, json=body)
    assert (status, answer) == (
        400,
        {"error": "id: expected a short lowercase id such as release-42"},
    )
    status, answer, _ = await send(daemon, "GET", "/api/v1/maintenance", READ)
    assert status == 200 and answer["windows"] == []


async def test_every_write_is_audited_by_token_name_never_by_value(
    daemon: Daemon, logs: Logs
) -> None:
    """Each write, done or refused, is one ``audit`` event with name, action, target, status."""
    incident = incident_id(daemon)
    steps: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("POST", f"/api/v1/incidents/{incident}/identify", {"message": "Carrier down"}, 200),
        ("POST", f"/api/v1/incidents/{incident}/update", {"message": "Still down"}, 200),
        ("POST", f"/api/v1/incidents/{incident}/postmortem", {"message": "Too soon"}, 409),
        ("POST", "/api/v1/maintenance", WINDOW, 201),
        ("POST", "/api/v1/maintenance/release-42/extend", {"end": "2030-01-01T13:00:00Z"}, 200),
        ("DELETE", "/api/v1/maintenance/release-42", None, 200),
        ("DELETE", "/api/v1/maintenance/nope", None, 404),
        # The carrier still fails: a plain resolve is refused, a forced one closes it.
        ("POST", f"/api/v1/incidents/{incident}/resolve", {"message": "Fixed"}, 409),
        (
            "POST",
            f"/api/v1/incidents/{incident}/resolve",
            {"message": "Closed", "force": True},
            200,
        ),
    ]
    for method, path, body, expected in steps:
        status, answer, _ = await send(daemon, method, path, WRITE, json=body)
        assert status == expected, (path, answer)
    # A read-only token may not write: refused, and logged by name.
    status, _, _ = await send(
        daemon, "POST", f"/api/v1/incidents/{incident}/update", READ, json={"message": "x"}
    )
    assert status == 403
    # Reads are not audited.
    assert (await send(daemon, "GET", "/api/v1/maintenance", READ))[0] == 200

    found = [(e["operator"], e["action"], e["target"], e["status"]) for e in audits(logs)]
    assert found == [
        ("ops", "incident.identify", incident, 200),
        ("ops", "incident.update", incident, 200),
        ("ops", "incident.postmortem", incident, 409),
        ("ops", "maintenance.add", "release-42", 201),
        ("ops", "maintenance.extend", "release-42", 200),
        ("ops", "maintenance.cancel", "release-42", 200),
        ("ops", "maintenance.cancel", "nope", 404),
        ("ops", "incident.resolve", incident, 409),
        ("ops", "incident.resolve", incident, 200),
    ]
    assert all(e["client"] == "127.0.0.1" and e["log_level"] == "info" for e in audits(logs))
    [refused] = [e for e in logs if e["event"] == "api_read_only_token"]
    assert refused["operator"] == "grafana"
    assert_no_secret(logs)


async def test_a_flood_of_bad_requests_leaves_the_api_serving(daemon: Daemon) -> None:
    """Fifty concurrent abusive requests from other addresses, then a good write succeeds."""
    incident = incident_id(daemon)
    path = f"/api/v1/incidents/{incident}/update"
    abuse = [
        send(daemon, "POST", path, WRONG, source=f"127.0.1.{n}", json={"message": "x"})
        for n in range(1, 26)
    ] + [send(daemon, "POST", path, WRITE, source="127.0.2.1", data=b"{" * n) for n in range(1, 26)]
    answers = await asyncio.gather(*abuse)
    assert {status for status, _, _ in answers} == {400, 401}
    status, body, _ = await send(daemon, "POST", path, WRITE, json={"message": "Still on it"})
    assert status == 200 and body["incident"]["id"] == incident
