"""The whole path: a real target fails, real SMTP receives the customers' emails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.cli.smtpsink import ReceivedMessage
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from tests.conftest import ConfigFactory
from tests.smtp_server import FailingSmtpServer
from tests.waiting import until

RETRY_S, THRESHOLD = 0.1, 3


@dataclass
class Target:
    """A tracking API on 127.0.0.1 that the test can break and restore."""

    url: str
    broken: bool = False


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A real aiohttp tracking API answering 200 with a parcel, or 503 while broken."""
    state = Target(url="")

    async def track(_: web.Request) -> web.Response:
        if state.broken:
            return web.json_response({"status": "KO"}, status=503)
        return web.json_response({"parcelNumber": "6A0", "status": "OK"})

    async def labels(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/tracking", track)
    app.router.add_get("/labels", labels)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/"))
        yield state


def fast_config(make_config: ConfigFactory, target: Target, smtp_port: int, **extra: object):
    """A config probing the target every 200 ms with 100 ms retries, delivering by SMTP."""
    values: dict[str, object] = {
        "interval": "200ms",
        "timeout": "1s",
        "retry": f"{int(RETRY_S * 1000)}ms",
        "tracking_url": target.url + "tracking",
        "labels_url": target.url + "labels",
        "transport": "smtp",
        "smtp_port": smtp_port,
        "update_every": "1500ms",
        "stable_for": "300ms",
    }
    values.update(extra)
    return make_config(**values)


def kinds(messages: list[ReceivedMessage], kind: str) -> list[ReceivedMessage]:
    """The received messages of one notice kind."""
    return [m for m in messages if m.message["X-Forewarn-Kind"] == kind]


async def test_outage_reaches_exactly_the_subscribers_then_resolves(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer
) -> None:
    """Each tracking subscriber alone gets a fast first notice, an update, then a resolution."""
    daemon = Daemon(fast_config(make_config, target, smtp.port))
    await daemon.start()
    try:
        await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
        target.broken = True
        await until(lambda: len(kinds(smtp.messages, "first")) == 2)
        accepted_at = time.time()
        incident = daemon.engine.covering("tracking")
        first_to_inbox = accepted_at - incident.first_failure_at
        print(f"first failed probe → email accepted: {first_to_inbox * 1000:.0f} ms")
        assert first_to_inbox < RETRY_S * THRESHOLD + 1.0

        firsts = {m.rcpt_tos[0]: m.message for m in kinds(smtp.messages, "first")}
        assert set(firsts) == {"ops@acme.example", "it@globex.example"}
        assert (
            firsts["ops@acme.example"]["Subject"] == "[Incident] Suivi de colis : service perturbé"
        )
        assert firsts["it@globex.example"]["Subject"] == "[Incident] Parcel tracking disrupted"
        assert all(len(m.rcpt_tos) == 1 for m in smtp.messages)
        assert firsts["ops@acme.example"]["To"] == "ops@acme.example"

        await until(lambda: len(kinds(smtp.messages, "update")) >= 2)
        target.broken = False
        await until(lambda: len(kinds(smtp.messages, "resolved")) == 2)
        resolved = {m.rcpt_tos[0]: m.message for m in kinds(smtp.messages, "resolved")}
        text = resolved["ops@acme.example"].get_body(("plain",)).get_content()
        assert "Début de la perturbation :" in text and "Durée :" in text
        assert resolved["it@globex.example"]["Subject"] == "[Resolved] Parcel tracking restored"
    finally:
        await daemon.stop()
    assert "support@initech.example" not in {r for m in smtp.messages for r in m.rcpt_tos}
    ids = [m.message["Message-ID"] for m in smtp.messages]
    assert len(ids) == len(set(ids)), "a notice was delivered twice"


async def test_restart_resumes_the_incident_and_sends_nothing_twice(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer
) -> None:
    """After a restart on the same state, the open incident goes on; no notice repeats."""
    config = fast_config(make_config, target, smtp.port, update_every="1h")
    first = Daemon(config)
    await first.start()
    await until(lambda: first.engine.states["tracking-ws"].seen_up)
    target.broken = True
    await until(lambda: len(kinds(smtp.messages, "first")) == 2)
    await first.stop()
    incident_id = first.engine.covering("tracking").id

    second = Daemon(config)
    await second.start()
    try:
        assert second.engine.covering("tracking").id == incident_id
        await until(lambda: second.engine.states["tracking-ws"].status is CheckStatus.DOWN)
        await asyncio.sleep(0.1)
        assert len(smtp.messages) == 2, "a restart must not send the first notice again"
        target.broken = False
        await until(lambda: len(kinds(smtp.messages, "resolved")) == 2)
    finally:
        await second.stop()
    assert len(smtp.messages) == 4


async def test_notices_wait_in_the_outbox_while_smtp_is_down(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer
) -> None:
    """With SMTP refusing mail, the first notices stay queued and arrive once it recovers."""
    smtp.fail_mail_with = (421, "4.3.0 Try again later")
    daemon = Daemon(fast_config(make_config, target, smtp.port, retry_initial="50ms"))
    await daemon.start()
    try:
        await until(lambda: daemon.engine.states["tracking-ws"].seen_up)
        target.broken = True
        await until(lambda: daemon.engine.covering("tracking") is not None)
        await until(lambda: daemon.store.pending_count() == 2)
        assert smtp.messages == []
        smtp.fail_mail_with = None
        await until(lambda: len(kinds(smtp.messages, "first")) == 2)
        await until(lambda: daemon.store.pending_count() == 0)  # outcomes are written in groups
    finally:
        await daemon.stop()


async def test_a_refused_recipient_does_not_block_the_others(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer
) -> None:
    """SMTP 550 for one customer: the other gets exactly one notice; the bad one is suppressed."""
    smtp.reject_rcpt = {"ops@acme.example": "550 5.1.1 No such user"}
    daemon = Daemon(fast_config(make_config, target, smtp.port, update_every="1h"))
    await daemon.start()
    try:
        await until(lambda: daemon.engine.states["tracking-ws"].seen_up)
        target.broken = True
        await until(lambda: len(kinds(smtp.messages, "first")) == 1)
        await until(lambda: daemon.store.pending_count() == 0)
        assert [m.rcpt_tos for m in smtp.messages] == [["it@globex.example"]]
        assert daemon.store.suppressed(["ops@acme.example"]) == {"ops@acme.example"}
    finally:
        await daemon.stop()
