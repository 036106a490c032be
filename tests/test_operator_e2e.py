"""The operator's path end to end: a running Daemon, the real CLI, real SMTP, a real target.

The CLI is synchronous and the daemon runs on the test's event loop, so every command runs
through ``asyncio.to_thread(main, …)`` with the address and token read from checks.yaml.
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.cli.main import main
from monitor.cli.smtpsink import ReceivedMessage
from monitor.config.load import Config, load_config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import IncidentStatus
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

WRITE = "ops-write-token-0123456789abcdef"
READ = "grafana-read-token-0123456789abcd"
WRONG = "wrong-token-0123456789abcdefghij"
TRACKING = {"ops@acme.example", "it@globex.example"}
LABELS = {"ops@acme.example", "support@initech.example"}
OPS_MAILBOX = "oncall@example.net"

CHECKS_YAML = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:{port}", public_url: "https://status.example.net",
         timezone: Europe/Paris, api_tokens_file: "{tokens}"}}
defaults: {{interval: 200ms, timeout: 1s, retry_interval: 100ms,
           failure_threshold: 3, success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}{labels_extra}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{url}tracking",
     expect: {{status: [200], body_contains: parcelNumber}}}}
  - {{id: labels-ws, service: labels, type: http, url: "{url}labels"}}
customers:
  - {{id: acme, name: ACME Boutique, email: ops@acme.example, language: fr,
     services: [tracking, labels]}}
  - {{id: globex, name: Globex Ltd, email: it@globex.example, language: en,
     timezone: Europe/London, services: [tracking]}}
  - {{id: initech, name: Initech, email: support@initech.example, language: fr,
     services: [labels]}}
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  customer_delay: {customer_delay}
  update_every: 1h
  stable_for: 300ms
  retry_initial: 100ms
  digest_window: 0s
  ops: {ops}
{notices_extra}maintenance: {maintenance}
"""


@dataclass
class Target:
    """Tracking and labels APIs on 127.0.0.1 that the test can break and restore."""

    url: str = ""
    broken: set[str] = field(default_factory=set)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A real aiohttp server answering 200, or 503 for the paths listed in ``broken``."""
    state = Target()

    async def track(_: web.Request) -> web.Response:
        if "tracking" in state.broken:
            return web.json_response({"status": "KO"}, status=503)
        return web.json_response({"parcelNumber": "6A0", "status": "OK"})

    async def labels(_: web.Request) -> web.Response:
        if "labels" in state.broken:
            return web.Response(status=503, text="down")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/tracking", track)
    app.router.add_get("/labels", labels)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/"))
        yield state


@pytest.fixture(autouse=True)
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the daemon's log lines off the CLI's stdout; no token from the environment."""
    monkeypatch.delenv("FOREWARN_TOKEN", raising=False)
    with structlog.testing.capture_logs():
        yield


ConfigWriter = Callable[..., Config]


@pytest.fixture
def write_config(tmp_path: Path, target: Target, smtp: FailingSmtpServer) -> ConfigWriter:
    """Write checks.yaml (API on a free port, tokens file beside it) and load it."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{WRITE}\ngrafana:{READ}:read\n", encoding="utf-8")

    def write(
        customer_delay: str = "0s",
        ops: str = "[]",
        maintenance: str = "[]",
        labels_extra: str = "",
        notices_extra: str = "",
    ) -> Config:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        path = tmp_path / "checks.yaml"
        path.write_text(
            CHECKS_YAML.format(
                state=tmp_path / "state",
                port=port,
                tokens=tokens,
                url=target.url,
                smtp_port=smtp.port,
                customer_delay=customer_delay,
                ops=ops,
                maintenance=maintenance,
                labels_extra=labels_extra,
                notices_extra=notices_extra,
            ),
            encoding="utf-8",
        )
        return load_config(path)

    return write


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Config], Awaitable[Daemon]]]:
    """Start Daemons on this loop; each is stopped after the test."""
    started: list[Daemon] = []

    async def start(config: Config) -> Daemon:
        daemon = Daemon(config)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        await daemon.stop(deadline_s=1.0)


async def forewarn(
    capsys: pytest.CaptureFixture[str], config: Config, *args: str
) -> tuple[int, str, str]:
    """Run ``forewarn <args> -c checks.yaml`` off the loop; return status, stdout, stderr."""
    status = await asyncio.to_thread(main, [*args, "-c", str(config.source)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert not any(secret in out + err for secret in (WRITE, READ, WRONG))
    return status, out, err


def kinds(smtp: FailingSmtpServer, kind: str) -> list[ReceivedMessage]:
    """The received messages of one notice kind."""
    return [m for m in smtp.messages if m.message["X-Forewarn-Kind"] == kind]


def to(messages: list[ReceivedMessage]) -> list[str]:
    """Every recipient of ``messages``, sorted (duplicates kept)."""
    return sorted(r for m in messages for r in m.rcpt_tos)


def text_of(message: ReceivedMessage) -> str:
    """The plain-text body with whitespace runs collapsed (templates may wrap lines)."""
    body = message.message.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


def iso(at: float) -> str:
    """A Unix time as ISO 8601 with an offset, to the millisecond."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


async def test_operator_identifies_resolves_and_publishes_a_postmortem_from_the_cli(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
    tmp_path: Path,
) -> None:
    """Identify, resolve and postmortem from the shell reach exactly the tracking customers."""
    config = write_config()
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
    target.broken.add("tracking")
    await until(lambda: len(kinds(smtp, "first")) == 2)
    incident_id = daemon.engine.covering("tracking").id

    status, out, _ = await forewarn(capsys, config, "incidents", "list")
    assert status == 0
    assert out.splitlines()[1].split()[:3] == [incident_id, "investigating", "tracking"]

    identified = "Carrier certificate expired; renewal in progress"
    status, out, _ = await forewarn(
        capsys, config, "incidents", "identify", incident_id, "-m", identified
    )
    assert (status, out.strip()) == (0, f"incident {incident_id}: identify sent, now identified")
    await until(lambda: len(kinds(smtp, "update")) == 2)
    assert to(kinds(smtp, "update")) == sorted(TRACKING)
    assert all(identified in text_of(m) for m in kinds(smtp, "update"))
    assert daemon.engine.covering("tracking").status is IncidentStatus.IDENTIFIED

    # Still failing: a plain resolve is refused, it would tell customers it works again.
    status, _, err = await forewarn(
        capsys, config, "incidents", "resolve", incident_id, "-m", "Certificate renewed"
    )
    assert status != 0 and "tracking still failing" in err and "force" in err
    assert daemon.engine.covering("tracking") is not None and not kinds(smtp, "resolved")
    status, out, _ = await forewarn(
        capsys, config, "incidents", "resolve", incident_id, "--force", "-m", "Certificate renewed"
    )
    assert (status, out.strip()) == (0, f"incident {incident_id}: resolve sent, now resolved")
    await until(lambda: len(kinds(smtp, "resolved")) == 2)
    assert to(kinds(smtp, "resolved")) == sorted(TRACKING)
    # Customers read that the team closed it, never that the service works again.
    for message in kinds(smtp, "resolved"):
        words = message.message["Subject"] + " " + text_of(message)
        assert "closed" in words or "clos" in words, words
        for untrue in ("restored", "rétabli", "normally again", "de nouveau normalement"):
            assert untrue not in words, words
    # Still failing, but hushed until it answers: no incident reopens, no new first notice.
    await holds(
        lambda: (
            daemon.engine.states["tracking-ws"].status is CheckStatus.DOWN
            and daemon.engine.covering("tracking") is None
            and len(kinds(smtp, "first")) == 2
        ),
        for_s=1.0,
    )

    postmortem = tmp_path / "pm.txt"
    postmortem.write_text("Root cause: an expired carrier certificate.\n", encoding="utf-8")
    status, _, _ = await forewarn(
        capsys, config, "incidents", "postmortem", incident_id, "--file", str(postmortem)
    )
    assert status == 0
    await until(lambda: len(kinds(smtp, "postmortem")) == 2)
    assert to(kinds(smtp, "postmortem")) == sorted(TRACKING)
    for message in kinds(smtp, "postmortem"):
        assert "Root cause: an expired carrier certificate." in text_of(message)
    assert "support@initech.example" not in to(smtp.messages)
    assert len(smtp.messages) == 8  # first, update, resolved, postmortem to each of two


async def test_api_refuses_without_a_token(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    tmp_path: Path,
) -> None:
    """No token is a 401, a read-only token's write a 403, a wrong CLI token exit 1."""
    config = write_config()
    daemon = await running(config)
    url = f"http://127.0.0.1:{daemon.port}/api/v1/incidents/x/identify"
    body = {"message": "Carrier gateway down"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        headers = {"Authorization": f"Bearer {READ}"}
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 403
            assert "read-only" in (await response.json())["error"]

    wrong = tmp_path / "wrong"
    wrong.write_text(WRONG + "\n", encoding="utf-8")
    status, out, err = await forewarn(
        capsys, config, "incidents", "list", "--token-file", str(wrong)
    )
    assert (status, out) == (1, "")
    assert "invalid token (HTTP 401)" in err


async def test_maintenance_window_announces_starts_ends_and_extends(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """A window added from the shell is announced, started, extended once and ended."""
    config = write_config()
    daemon = await running(config)
    await until(lambda: daemon.engine.states["labels-ws"].status is CheckStatus.UP)
    now = time.time()
    start, end, later = now + 1.0, now + 2.0, now + 2.5
    status, out, _ = await forewarn(
        capsys, config, "maintenance", "add", "--services", "labels",
        "--start", iso(start), "--end", iso(end), "--announce-before", "1s",
        "--summary-fr", "Mise à jour du service d'étiquettes",
        "--summary-en", "Labelling service upgrade",
    )  # fmt: skip
    assert status == 0
    found = re.match(r"maintenance (\S+) planned: labels from ", out)
    assert found, out
    window_id = found.group(1)
    await until(lambda: len(kinds(smtp, "maintenance_planned")) == 2, timeout_s=0.8)
    assert to(kinds(smtp, "maintenance_planned")) == sorted(LABELS)
    assert kinds(smtp, "maintenance_started") == []

    await until(lambda: len(kinds(smtp, "maintenance_started")) == 2)
    assert time.time() >= start
    assert to(kinds(smtp, "maintenance_started")) == sorted(LABELS)
    target.broken.add("labels")

    status, out, _ = await forewarn(
        capsys, config, "maintenance", "extend", window_id, "--end", iso(later)
    )
    assert status == 0 and f"maintenance {window_id} extended" in out
    await until(lambda: len(kinds(smtp, "maintenance_extended")) == 2)
    assert to(kinds(smtp, "maintenance_extended")) == sorted(LABELS)

    # Down inside the window: confirmed by the detector, yet no incident and no notice.
    await until(lambda: daemon.engine.states["labels-ws"].status is CheckStatus.DOWN)
    assert daemon.engine.covering("labels") is None
    target.broken.discard("labels")
    await until(lambda: daemon.engine.states["labels-ws"].status is CheckStatus.UP)

    await until(lambda: len(kinds(smtp, "maintenance_ended")) == 2)
    assert time.time() >= later, "the window ended at its old end"
    assert to(kinds(smtp, "maintenance_ended")) == sorted(LABELS)
    assert len(kinds(smtp, "maintenance_extended")) == 2  # one each, never repeated
    assert daemon.engine.covering("labels") is None
    assert not kinds(smtp, "first") and not kinds(smtp, "ops")
    assert "it@globex.example" not in to(smtp.messages)


async def test_a_maintenance_that_overruns_opens_an_incident_at_once(
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """Still down when its window ends: customers hear at once despite customer_delay."""
    end = math.ceil(time.time()) + 2  # whole seconds, as people write them in checks.yaml
    window = (
        f"[{{id: carrier-upgrade, services: [tracking], start: '{iso(end - 60)[:19]}+00:00',"
        f" end: '{iso(end)[:19]}+00:00', announce_before: 0s,"
        " summary: {fr: Mise à jour, en: Upgrade}}]"
    )
    ops = f"[{{type: email, to: {OPS_MAILBOX}}}]"
    config = write_config(customer_delay="10s", ops=ops, maintenance=window)
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].seen_up)  # it worked before
    target.broken.add("tracking")

    await until(lambda: len(kinds(smtp, "maintenance_started")) == 2)
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.DOWN)
    assert daemon.engine.covering("tracking") is None, "an incident opened inside the window"
    assert not kinds(smtp, "first") and not kinds(smtp, "ops")

    await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=3.0)
    assert end <= time.time() < end + 1.5, "the overrun waited for customer_delay"
    assert to(kinds(smtp, "first")) == sorted(TRACKING)
    incident = daemon.engine.covering("tracking")
    assert incident is not None and incident.maintenance_id == "carrier-upgrade"
    await until(lambda: kinds(smtp, "ops"))
    [ops_mail] = kinds(smtp, "ops")
    assert ops_mail.rcpt_tos == [OPS_MAILBOX]
    assert "Still down after maintenance carrier-upgrade ended." in text_of(ops_mail)
    # In daemon.timezone with its offset, as the CLI, the emails and the page show times.
    assert re.search(r"First failure: [\d-]{10} [\d:]{8}\+0[12]:00", text_of(ops_mail))
    assert "UTC" not in text_of(ops_mail)
    assert "support@initech.example" not in to(smtp.messages)
    # One email each at the end: "taking longer than planned", never also "complete".
    assert kinds(smtp, "maintenance_ended") == []
    for first in kinds(smtp, "first"):
        words = first.message["Subject"] + text_of(first)
        assert "longer than planned" in words or "plus longue que prévu" in words, words
