"""Email delivery failing for a while is news for ops once, and /healthz says so.

End to end: the real daemon, a real SMTP server that answers 421 to every sender, a real
webhook receiver as the ops channel; then the SMTP server recovers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from monitor.config.load import Config
from monitor.daemon import Daemon
from monitor.delivery.watch import DeliveryWatch, Outcome
from tests.operator_scene import (
    ConfigWriter,
    Target,
    kinds,
)
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.usefixtures("quiet_logs")

FAILING = "email delivery is failing"


def alarms(hook: Receiver) -> list[str]:
    """Webhook texts about failing delivery."""
    return [b["text"] for b in hook.bodies if FAILING in b["text"]]


async def health(daemon: Daemon) -> dict[str, Any]:
    """The /healthz body."""
    url = f"http://127.0.0.1:{daemon.port}/healthz"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        body: dict[str, Any] = await answer.json()
        return body


async def test_smtp_down_for_a_while_is_told_once_and_shows_in_healthz(
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
    receiver: Receiver,
) -> None:
    """421 to every send: one webhook alarm after delivery_alarm_after; healthz until a send."""
    smtp.fail_mail_with = (421, "4.3.2 Service not available, try later")
    config = write_config(
        ops=f"[{{type: webhook, url: '{receiver.url}'}}]",
        # Backoff capped at 1 s: however long a busy machine keeps SMTP refused, the first
        # attempt after it recovers comes within a second.
        notices_extra="  delivery_alarm_after: 500ms\n  retry_max: 1s\n",
    )
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].seen_up)
    target.broken.add("tracking")
    await until(lambda: any("DOWN" in b["text"] for b in receiver.bodies))
    assert (await health(daemon))["status"] == "ok"  # failing, but not for long yet

    await until(lambda: len(alarms(receiver)) == 1)
    [alarm] = alarms(receiver)
    assert "421" in alarm and "Notices stay queued" in alarm
    body = await health(daemon)
    assert body["status"] == "degraded" and list(body["delivery_failing"]) == ["email"]
    await holds(lambda: len(alarms(receiver)) == 1 and len(smtp.mail_at) >= 2, for_s=0.5)

    smtp.fail_mail_with = None
    await until(lambda: len(kinds(smtp, "first")) == 2)
    await until(lambda: daemon.dispatcher.watch.failing() == {})
    body = await health(daemon)
    assert body["status"] == "ok" and "delivery_failing" not in body
    assert len(alarms(receiver)) == 1


T, S, SETUP, ONE = Outcome.TRANSIENT, Outcome.SENT, Outcome.SETUP, Outcome.RECIPIENT


@pytest.mark.parametrize(
    ("steps", "told"),
    [
        # (at, outcome) of attempts on "email"; the times at which the alarm became due
        ([(0.0, T), (60.0, T), (119.0, T)], []),
        ([(0.0, T), (120.0, T), (300.0, T)], [120.0]),  # once, however long it lasts
        ([(0.0, T), (100.0, S), (150.0, T), (200.0, T)], []),  # a success starts over
        ([(0.0, SETUP)], [0.0]),  # credentials refused: news at once
        ([(0.0, ONE), (500.0, ONE)], []),  # one address refused says nothing of the channel
        ([(0.0, T), (130.0, T), (140.0, S), (150.0, T), (300.0, T)], [130.0, 300.0]),
    ],
)
def test_an_episode_is_news_once_after_alarm_after(
    steps: list[tuple[float, Outcome]], told: list[float]
) -> None:
    """Transient failures are news after 120 s without a success; a success ends the episode."""
    watch = DeliveryWatch(alarm_after=120.0)
    news = []
    for at, outcome in steps:
        watch.observe("email", outcome, "421 try later", at)
        news += [at for _ in watch.due(at)]
    assert news == told
