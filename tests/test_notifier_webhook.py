"""WebhookNotifier against a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.config.load import NoticesConfig
from monitor.core.notice import Notice, NoticeKind
from monitor.notices.ops import delivery_alerts
from notifiers import NOTIFIERS
from notifiers.base import NotifierError
from notifiers.webhook import WebhookChannel, WebhookNotifier
from tests.webhook_receiver import TOKEN, Receiver


@pytest.fixture
async def notifier(tmp_path: Path) -> AsyncIterator[WebhookNotifier]:
    """A webhook notifier built through the registry, closed after the test."""
    built = NOTIFIERS["webhook"].factory(NoticesConfig(), tmp_path)
    assert isinstance(built, WebhookNotifier)
    yield built
    await built.close()


def ops_notice(url: str) -> Notice:
    """An ops-channel notice addressed to ``url``."""
    return Notice(
        key="inc-1:0:ops-slack",
        incident_id="inc-1",
        kind=NoticeKind.OPS,
        channel="webhook",
        recipient="ops-slack",
        address=url,
        language="en",
        subject="tracking is DOWN",
        text="HTTP 503 since 14:02",
        html="",
        created_at=0.0,
    )


async def test_2xx_delivers_slack_compatible_json(
    receiver: Receiver, notifier: WebhookNotifier
) -> None:
    """A 200 is success, and the body is {"text": subject, blank line, text}."""
    await notifier.send(ops_notice(receiver.url))
    assert receiver.bodies == [{"text": "tracking is DOWN\n\nHTTP 503 since 14:02"}]


async def test_an_ops_text_that_starts_with_its_title_says_it_once(
    receiver: Receiver, notifier: WebhookNotifier
) -> None:
    """The ops lines open with their subject: the webhook does not repeat it above them."""
    channel = WebhookChannel(type="webhook", name="slack", url=receiver.url)  # type: ignore[arg-type]
    at = 1_795_348_800.0  # 2026-11-22 12:00 UTC
    [alert] = delivery_alerts([channel], "email", "connection refused", at, ZoneInfo("UTC"))
    await notifier.send(alert)
    [body] = receiver.bodies
    assert body["text"].startswith(alert.subject + "\n")
    assert body["text"].count(alert.subject) == 1
    assert "Since 2026-11-22 12:00:00+00:00 every email notice fails" in body["text"]


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (503, False),
        (408, False),
        (429, False),
        (404, True),
        (400, True),
        (410, True),
        (302, True),
    ],
)
async def test_error_statuses_are_transient_or_permanent(
    receiver: Receiver, notifier: WebhookNotifier, status: int, permanent: bool
) -> None:
    """408, 429 and 5xx are worth retrying; other 4xx (and redirects, not followed) are not."""
    receiver.status = status
    with pytest.raises(NotifierError) as caught:
        await notifier.send(ops_notice(receiver.url))
    assert (caught.value.permanent, caught.value.code) == (permanent, status)
    assert TOKEN not in str(caught.value)  # the URL is a secret: errors never quote it
    assert len(receiver.bodies) == 1


async def test_unreachable_receiver_is_transient(tmp_path: Path) -> None:
    """A closed port is a transient failure."""
    app = web.Application()
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url(f"/services/{TOKEN}"))
    sender = WebhookNotifier(NoticesConfig(), tmp_path)
    with pytest.raises(NotifierError) as caught:
        await sender.send(ops_notice(url))
    await sender.close()
    assert caught.value.permanent is False
    assert TOKEN not in str(caught.value)


async def test_a_hanging_receiver_times_out_as_transient(
    receiver: Receiver, tmp_path: Path
) -> None:
    """A receiver that never answers costs at most the timeout, then is retried later."""
    receiver.hang = True
    sender = WebhookNotifier(NoticesConfig(), tmp_path, timeout=0.05)
    with pytest.raises(NotifierError) as caught:
        await sender.send(ops_notice(receiver.url))
    await sender.close()
    assert caught.value.permanent is False


async def test_a_malformed_url_is_permanent(notifier: WebhookNotifier) -> None:
    """A URL that cannot be requested will never work: permanent."""
    with pytest.raises(NotifierError) as caught:
        await notifier.send(ops_notice("not a url"))
    assert caught.value.permanent is True
