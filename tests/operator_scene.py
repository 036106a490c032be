"""The operator's scene: a target to break, a checks.yaml writer, daemons and the real CLI.

Shared by the end-to-end tests of the operator's path; their fixtures are in conftest.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.cli.main import main
from monitor.cli.smtpsink import ReceivedMessage
from monitor.config.load import Config, load_config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from tests.smtp_server import FailingSmtpServer
from tests.waiting import until

WRITE = "ops-write-token-0123456789abcdef"
READ = "grafana-read-token-0123456789abcd"
WRONG = "wrong-token-0123456789abcdefghij"
TRACKING = {"ops@acme.example", "it@globex.example"}
LABELS = {"ops@acme.example", "support@initech.example"}
OPS_MAILBOX = "oncall@example.net"

# The customers every scene's checks.yaml has (a .format template: braces doubled).
CUSTOMERS_YAML = """\
customers:
  - {{id: acme, name: ACME Boutique, email: ops@acme.example, language: fr,
     services: [tracking, labels]}}
  - {{id: globex, name: Globex Ltd, email: it@globex.example, language: en,
     timezone: Europe/London, services: [tracking]}}
  - {{id: initech, name: Initech, email: support@initech.example, language: fr,
     services: [labels]}}
"""

CHECKS_YAML = (
    """\
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
"""
    + CUSTOMERS_YAML
    + """\
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
)


@dataclass
class Target:
    """Tracking and labels APIs on 127.0.0.1 that the test can break and restore."""

    url: str = ""
    broken: set[str] = field(default_factory=set)


@asynccontextmanager
async def serving_target() -> AsyncIterator[Target]:
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

    async def canary(_: web.Request) -> web.Response:
        return web.Response(text="ok")  # forewarn's own network check: always answers

    app = web.Application()
    app.router.add_get("/tracking", track)
    app.router.add_get("/labels", labels)
    app.router.add_get("/canary", canary)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/"))
        yield state


ConfigWriter = Callable[..., Config]


def config_writer(tmp_path: Path, target: Target, smtp: FailingSmtpServer) -> ConfigWriter:
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


@asynccontextmanager
async def daemons() -> AsyncIterator[Callable[[Config], Awaitable[Daemon]]]:
    """Start Daemons on this loop; each is stopped when the block ends."""
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


async def tracking_outage(daemon: Daemon, target: Target, smtp: FailingSmtpServer) -> str:
    """Break tracking once it was seen up; wait for both its customers' first notices.

    Returns the incident's id.
    """
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
    target.broken.add("tracking")
    await until(lambda: len(kinds(smtp, "first")) == 2)
    incident = daemon.engine.covering("tracking")
    assert incident is not None
    return incident.id
