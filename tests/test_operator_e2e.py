"""The operator's path end to end: a running Daemon, the real CLI, real SMTP, a real target.

The CLI is synchronous and the daemon runs on the test's event loop, so every command runs
through ``asyncio.to_thread(main, …)`` with the address and token read from checks.yaml.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from monitor.config.load import Config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import IncidentStatus
from tests.operator_scene import (
    LABELS,
    OPS_MAILBOX,
    READ,
    TRACKING,
    WRONG,
    ConfigWriter,
    Target,
    forewarn,
    iso,
    kinds,
    text_of,
    to,
    tracking_outage,
)
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

pytestmark = pytest.mark.usefixtures("quiet_logs")


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
    incident_id = await tracking_outage(daemon, target, smtp)

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
