"""An incident no probe found, end to end: the real CLI, daemon, SMTP server and status page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from monitor.config.load import Config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import IncidentStatus
from tests.operator_scene import TRACKING, ConfigWriter, Target, forewarn, kinds, text_of, to
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

pytestmark = pytest.mark.usefixtures("quiet_logs")

REPORTED_FR = "Un client signale des erreurs de suivi depuis ce matin."
REPORTED_EN = "A customer reports tracking errors since this morning."
PAGE_NOTE = "Carrier support ticket 4521 opened, awaiting their answer."


async def public(daemon: Daemon, path: str) -> str:
    """The body of a public page of the running daemon."""
    url = f"http://127.0.0.1:{daemon.port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


async def test_an_incident_reported_by_phone_from_open_to_resolution(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """Opened by hand: told at once, page-only news, no duplicate on failure, resolved by hand."""
    config = write_config(customer_delay="10s")  # by hand, customers need not wait for it
    daemon = await running(config)
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)

    status, out, _ = await forewarn(
        capsys, config, "incidents", "open", "--services", "tracking",
        "--message-fr", REPORTED_FR, "--message-en", REPORTED_EN,
    )  # fmt: skip
    assert status == 0 and "opened: tracking, customers told" in out, out
    await until(lambda: len(kinds(smtp, "first")) == 2, timeout_s=2.0)
    assert to(kinds(smtp, "first")) == sorted(TRACKING)  # exactly tracking's customers
    for message in kinds(smtp, "first"):
        french = message.rcpt_tos == ["ops@acme.example"]
        assert (REPORTED_FR if french else REPORTED_EN) in text_of(message)
        assert (REPORTED_EN if french else REPORTED_FR) not in text_of(message)
    incident = daemon.engine.covering("tracking")
    assert incident is not None and incident.manual
    assert incident.id in out

    # Its checks are green for longer than stable_for (300 ms): it is not resolved for it.
    await holds(lambda: daemon.engine.covering("tracking") == incident, for_s=0.8)

    status, out, _ = await forewarn(
        capsys, config, "incidents", "update", incident.id, "--page-only", "-m", PAGE_NOTE
    )
    assert (status, out.strip()) == (
        0,
        f"incident {incident.id}: update on the status page (no email)",
    )
    await until(lambda: daemon.engine.store.timeline(incident.id)[-1].message.text("en"))
    page = await public(daemon, f"/incidents/{incident.id}?lang=en")
    assert PAGE_NOTE in page
    assert PAGE_NOTE in await public(daemon, "/feed.atom?lang=en")
    # The page says what customers were told, not what the green checks say.
    board = json.loads(await public(daemon, "/api/v1/status"))
    states = {s["id"]: s["state"] for s in board["services"]}
    assert states == {"tracking": "outage", "labels": "operational"}

    # The service's checks now fail too: the manual incident covers it, no second one opens.
    target.broken.add("tracking")
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.DOWN)
    await holds(
        lambda: list(daemon.engine.open) == [incident.id] and len(kinds(smtp, "first")) == 2,
        for_s=0.5,
    )
    target.broken.discard("tracking")
    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
    await holds(lambda: list(daemon.engine.open) == [incident.id], for_s=0.5)
    assert daemon.engine.open[incident.id].status is IncidentStatus.INVESTIGATING

    status, out, _ = await forewarn(
        capsys, config, "incidents", "resolve", incident.id, "-m", "Carrier fixed its gateway."
    )
    assert (status, out.strip()) == (0, f"incident {incident.id}: resolve sent, now resolved")
    await until(lambda: len(kinds(smtp, "resolved")) == 2)
    assert to(kinds(smtp, "resolved")) == sorted(TRACKING)
    assert daemon.engine.covering("tracking") is None
    # The page-only update emailed no one: first and resolution to each, nothing else.
    assert kinds(smtp, "update") == [] and len(smtp.messages) == 4
    assert PAGE_NOTE not in " ".join(text_of(m) for m in smtp.messages)
