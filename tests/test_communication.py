"""What customers and ops hear, end to end: flaps, dependencies, unsubscribes, canary.

Every part is real: the Daemon, aiohttp targets and an ops webhook on 127.0.0.1, an SMTP server.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.cli.smtpsink import ReceivedMessage
from monitor.config.load import Config, load_config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

ACME, GLOBEX, INITECH = "ops@acme.example", "it@globex.example", "support@initech.example"


@dataclass
class Target:
    """An HTTP service on 127.0.0.1 whose every path answers 200, or 503 while broken."""

    url: str = ""
    broken: bool = False
    hits: int = 0  # requests answered while broken


@dataclass
class Webhook:
    """An ops webhook on 127.0.0.1 recording the ``text`` of every JSON body POSTed to it."""

    url: str = ""
    texts: list[str] = field(default_factory=list)

    def saying(self, word: str) -> list[str]:
        """The received texts that contain ``word``."""
        return [t for t in self.texts if word in t]


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A real aiohttp target: ``/{anything}`` answers ``ok`` (200), or 503 while broken."""
    state = Target()

    async def answer(_: web.Request) -> web.Response:
        if state.broken:
            state.hits += 1
            return web.Response(status=503, text="unavailable")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{path}", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/"))
        yield state


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    """A real aiohttp ops webhook that records what forewarn POSTs."""
    state = Webhook()

    async def receive(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        state.texts.append(body["text"])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/hook"))
        yield state


Start = Callable[[Config], Awaitable[Daemon]]


@pytest.fixture
async def running() -> AsyncIterator[Start]:
    """Start daemons for a test and stop them afterwards, whatever the test's outcome."""
    daemons: list[Daemon] = []

    async def start(config: Config) -> Daemon:
        daemon = Daemon(config)
        await daemon.start()
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        await daemon.stop(deadline_s=2.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the system just gave it out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    tmp_path: Path,
    smtp_port: int,
    body: str,
    *,
    notices: str = "",
    daemon: str = "",
    listen: str = "127.0.0.1:0",
    public_url: str = "https://status.example.net",
    failure_threshold: int = 3,
    interval: str = "60ms",
) -> Config:
    """Load a compact checks.yaml: fast timing, SMTP delivery, then ``body`` and ``notices``."""
    text = f"""\
daemon:
  state_dir: {tmp_path / "state"}
  listen: "{listen}"
  public_url: "{public_url}"
  timezone: Europe/Paris
{daemon}
defaults: {{interval: {interval}, timeout: 1s, retry_interval: 30ms,
           failure_threshold: {failure_threshold}, success_threshold: 2}}
{body}
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  retry_initial: 50ms
  digest_window: 0s
{notices}"""
    path = tmp_path / "checks.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


TWO_SERVICES = """\
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{url}tracking"}}
  - {{id: labels-ws, service: labels, type: http, url: "{url}labels", interval: 1h}}
customers:
  - {{id: acme, name: {acme_name}, email: ops@acme.example, language: fr,
     services: [tracking]}}
  - {{id: globex, name: Globex Ltd, email: it@globex.example, language: en,
     services: [tracking]}}
  - {{id: initech, name: Initech, email: support@initech.example, services: [labels]}}
"""


def kinds(messages: list[ReceivedMessage], kind: str) -> list[ReceivedMessage]:
    """The received messages of one notice kind."""
    return [m for m in messages if m.message["X-Forewarn-Kind"] == kind]


def to(messages: list[ReceivedMessage], address: str) -> list[ReceivedMessage]:
    """The received messages addressed to ``address``."""
    return [m for m in messages if address in m.rcpt_tos]


def plain(message: ReceivedMessage) -> str:
    """The text/plain body of a received email."""
    part = message.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_flap_storm_gives_each_customer_at_most_three_emails(
    tmp_path: Path,
    target: Target,
    smtp: FailingSmtpServer,
    webhook: Webhook,
    running: Start,
) -> None:
    """A target flapping for seconds earns each subscriber an unstable notice and one resolution."""
    config = write_config(
        tmp_path,
        smtp.port,
        TWO_SERVICES.format(url=target.url, acme_name="ACME Boutique"),
        notices=f"""\
  customer_delay: 300ms
  update_every: 2500ms
  stable_for: 300ms
  ops: [{{type: webhook, url: "{webhook.url}"}}]
""",
        interval="100ms",
    )
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)

    storm_end = time.monotonic() + 3.0  # two hours of flapping, compressed
    while time.monotonic() < storm_end:
        target.broken = not target.broken
        await asyncio.sleep(0.15)
    target.broken = False

    await until(lambda: kinds(smtp.messages, "resolved"), timeout_s=4.0)
    await until(lambda: not daemon.engine.open, timeout_s=1.0)
    await holds(lambda: len(kinds(smtp.messages, "resolved")) == 2, 0.3)

    for address in (ACME, GLOBEX):
        mine = to(smtp.messages, address)
        sent = [m.message["X-Forewarn-Kind"] for m in mine]
        assert len(mine) <= 3, f"{address} got {sent}"
        assert "unstable" in sent, sent
        assert sent.count("resolved") == 1 and sent[-1] == "resolved", sent
        assert sent.count("first") <= 1, sent
    assert to(smtp.messages, INITECH) == []
    assert all(t.startswith("[forewarn]") for t in webhook.texts), webhook.texts
    down = [i for i, t in enumerate(webhook.texts) if t.startswith("[forewarn] DOWN")]
    resolved = [i for i, t in enumerate(webhook.texts) if t.startswith("[forewarn] RESOLVED")]
    assert down and resolved and down[0] < resolved[-1], webhook.texts


DEPENDENCIES = """\
services:
  - {{id: platform, name: {{fr: Plateforme, en: Carrier platform}}}}
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}, depends_on: [platform]}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}, depends_on: [platform]}}
checks:
  - {{id: platform-ws, service: platform, type: http, url: "{url}platform"}}
  - {{id: tracking-ws, service: tracking, type: http, url: "{url}tracking"}}
  - {{id: labels-ws, service: labels, type: http, url: "{url}labels"}}
customers:
  - {{id: both, name: Both, email: both@a.example, language: en, services: [tracking, labels]}}
  - {{id: track, name: Track, email: track@b.example, language: en, services: [tracking]}}
  - {{id: label, name: Label, email: label@c.example, language: en, services: [labels]}}
  - {{id: plat, name: Plat, email: plat@d.example, language: en, services: [platform]}}
"""


async def test_dependency_outage_gives_each_customer_one_email(
    tmp_path: Path, target: Target, smtp: FailingSmtpServer, running: Start
) -> None:
    """A platform failing under two dependants is one incident and one first email per customer."""
    config = write_config(
        tmp_path,
        smtp.port,
        DEPENDENCIES.format(url=target.url),
        notices="  customer_delay: 500ms\n  update_every: 1h\n  stable_for: 5m\n",
    )
    daemon = await running(config)
    checks = ("platform-ws", "tracking-ws", "labels-ws")
    await until(lambda: all(daemon.engine.states[c].status is CheckStatus.UP for c in checks))

    target.broken = True
    await until(lambda: all(daemon.engine.states[c].status is CheckStatus.DOWN for c in checks))
    await until(lambda: len(kinds(smtp.messages, "first")) >= 4)
    await holds(lambda: len(smtp.messages) == 4, 0.6)  # nothing more on the way

    assert len(daemon.engine.open) == 1, list(daemon.engine.open)
    (incident,) = daemon.engine.open.values()
    assert incident.service_id == "platform"
    assert set(incident.covered) == {"platform", "tracking", "labels"}
    addresses = ("both@a.example", "track@b.example", "label@c.example", "plat@d.example")
    for address in addresses:
        assert [m.message["X-Forewarn-Kind"] for m in to(smtp.messages, address)] == ["first"]
    (both,) = to(smtp.messages, "both@a.example")
    seen = both.message["Subject"] + plain(both)
    assert "Parcel tracking" in seen and "Shipping labels" in seen, seen


async def test_unsubscribed_customer_gets_nothing(
    tmp_path: Path, target: Target, smtp: FailingSmtpServer, running: Start
) -> None:
    """After a one-click unsubscribe, the next outage reaches the others but not that address."""
    port = free_port()
    config = write_config(
        tmp_path,
        smtp.port,
        TWO_SERVICES.format(url=target.url, acme_name="ACME Boutique"),
        notices="  customer_delay: 0s\n  update_every: 1h\n  stable_for: 200ms\n",
        listen=f"127.0.0.1:{port}",
        public_url=f"http://127.0.0.1:{port}",
    )
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].seen_up)
    target.broken = True
    await until(lambda: len(kinds(smtp.messages, "first")) == 2)
    assert daemon.engine.covering("tracking") is not None

    (first,) = to(smtp.messages, ACME)
    header = first.message["List-Unsubscribe"]
    found = re.fullmatch(r"<(http://127\.0\.0\.1:\d+/unsubscribe/[A-Za-z0-9_.-]+)>", header)
    assert found, header
    link = found.group(1)
    async with aiohttp.ClientSession() as http:
        async with http.get(link) as response:
            assert response.status == 200
        assert daemon.store.suppressed([ACME]) == set(), "a GET must not unsubscribe"
        async with http.post(link, data={"List-Unsubscribe": "One-Click"}) as response:
            assert response.status == 200
    assert daemon.store.suppressed([ACME]) == {ACME}

    target.broken = False
    await until(lambda: kinds(smtp.messages, "resolved"))
    await until(lambda: not daemon.engine.open and daemon.store.pending_count() == 0)
    assert [m.rcpt_tos for m in kinds(smtp.messages, "resolved")] == [[GLOBEX]]
    before = len(smtp.messages)
    target.broken = True
    await until(lambda: len(kinds(smtp.messages[before:], "first")) == 1)
    await holds(lambda: len(smtp.messages) == before + 1, 0.3)
    later = smtp.messages[before:]
    assert [m.rcpt_tos for m in later] == [[GLOBEX]]


async def test_header_injection_in_customer_name_adds_no_recipient(
    tmp_path: Path, target: Target, smtp: FailingSmtpServer, running: Start
) -> None:
    """CR/LF and a Bcc line in a customer's name stay text: no extra recipient or header."""
    evil_name = r'"ACME\r\nBcc: evil@attacker.example\r\nX-Evil: 1"'
    config = write_config(
        tmp_path,
        smtp.port,
        TWO_SERVICES.format(url=target.url, acme_name=evil_name),
        notices="  customer_delay: 0s\n  update_every: 1h\n  stable_for: 5m\n",
    )
    assert "\r\nBcc:" in next(c.name for c in config.customers if c.id == "acme")
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].seen_up)
    target.broken = True
    await until(lambda: len(kinds(smtp.messages, "first")) == 2)
    await until(lambda: daemon.store.pending_count() == 0)

    recipients = [r for m in smtp.messages for r in m.rcpt_tos]
    assert sorted(recipients) == [GLOBEX, ACME]
    assert not any("attacker" in r for r in recipients)
    (mail,) = to(smtp.messages, ACME)
    assert mail.rcpt_tos == [ACME]
    assert mail.message["To"] == ACME
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert "attacker" not in "".join(f"{k}: {v}" for k, v in mail.message.items())
    assert "ACME Bcc: evil@attacker.example X-Evil: 1" in plain(mail)  # one line of text


async def test_canary_failure_opens_no_incident_and_tells_ops(
    tmp_path: Path,
    target: Target,
    smtp: FailingSmtpServer,
    webhook: Webhook,
    running: Start,
) -> None:
    """With forewarn's own canary failing, a failing target opens nothing; ops hear "offline"."""
    config = write_config(
        tmp_path,
        smtp.port,
        TWO_SERVICES.format(url=target.url, acme_name="ACME Boutique"),
        daemon=f"  canary: [{{id: uplink, type: tcp, host: 127.0.0.1, port: {free_port()}}}]",
        notices=f"""\
  customer_delay: 0s
  update_every: 1h
  stable_for: 5m
  ops: [{{type: webhook, url: "{webhook.url}"}}]
""",
    )
    target.broken = True
    daemon = await running(config)
    await until(lambda: webhook.saying("offline"))
    await until(lambda: daemon.engine.states["uplink"].status is CheckStatus.DOWN)

    def quiet() -> bool:
        return not daemon.engine.open and smtp.messages == []

    probed = target.hits
    await holds(quiet, 1.5)
    # The broken target is still probed: ten more runs however slowly a busy machine makes
    # them, and still nothing opened or sent.
    await until(lambda: target.hits - probed >= 10)
    assert quiet(), "an incident opened, or a mail went out"
    assert not webhook.saying("DOWN"), webhook.texts
