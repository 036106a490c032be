"""Unsubscribes are not silent: logged, told to ops, listed and lifted from the CLI.

End to end: the real daemon, its unsubscribe link, a real SMTP server, the real CLI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import structlog

from monitor.config.load import Config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from tests.operator_scene import (
    OPS_MAILBOX,
    ConfigWriter,
    Target,
    forewarn,
    kinds,
    text_of,
    to,
)
from tests.smtp_server import FailingSmtpServer
from tests.waiting import until

pytestmark = pytest.mark.usefixtures("quiet_logs")

GLOBEX = "it@globex.example"


def unsubscribed(smtp: FailingSmtpServer) -> list[str]:
    """Subjects of the ops emails about unsubscriptions."""
    return [
        str(m.message["Subject"])
        for m in kinds(smtp, "ops")
        if "Unsubscribed" in str(m.message["Subject"])
    ]


async def test_an_unsubscribe_is_logged_told_to_ops_listed_and_lifted(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    target: Target,
    smtp: FailingSmtpServer,
) -> None:
    """One-click unsubscribe: ops hear it once; the CLI lists it and lifts it again."""
    config = write_config(ops=f"[{{type: email, to: {OPS_MAILBOX}}}]")
    daemon = await running(config)
    assert daemon.signer is not None
    link = f"http://127.0.0.1:{daemon.port}/unsubscribe/{daemon.signer.token(GLOBEX)}"
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # a second click the same day is no news
                async with session.post(link, data={"List-Unsubscribe": "One-Click"}) as answer:
                    assert answer.status == 200
    assert [e["customers"] for e in logs if e["event"] == "unsubscribed"] == [["globex"]] * 2
    assert GLOBEX not in repr(logs)  # logs name customers by id
    await until(lambda: len(unsubscribed(smtp)) == 1)
    [ops_mail] = [m for m in kinds(smtp, "ops") if "Unsubscribed" in str(m.message["Subject"])]
    assert ops_mail.message["Subject"] == "[forewarn] Unsubscribed: Globex Ltd (globex)"
    assert f"forewarn customers suppressed lift {GLOBEX}" in text_of(ops_mail)

    status, out, _ = await forewarn(capsys, config, "customers", "suppressed")
    assert status == 0
    header, row = out.splitlines()
    assert header.split() == ["ADDRESS", "REASON", "SINCE", "CUSTOMERS"]
    assert row.split()[:2] == [GLOBEX, "unsubscribed"] and row.endswith("globex")

    await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
    target.broken.add("tracking")
    await until(lambda: len(kinds(smtp, "first")) == 1)
    assert to(kinds(smtp, "first")) == ["ops@acme.example"]

    status, out, _ = await forewarn(capsys, config, "customers", "suppressed", "lift", GLOBEX)
    assert (status, out.strip()) == (0, f"{GLOBEX} gets notices again (unsubscribed lifted)")
    incident_id = daemon.engine.covering("tracking").id
    status, _, _ = await forewarn(
        capsys, config, "incidents", "update", incident_id, "-m", "On it."
    )
    assert status == 0
    await until(lambda: len(kinds(smtp, "update")) == 2)
    assert to(kinds(smtp, "update")) == sorted(["ops@acme.example", GLOBEX])
    assert len(unsubscribed(smtp)) == 1

    status, out, err = await forewarn(capsys, config, "customers", "suppressed", "lift", GLOBEX)
    assert (status, out) == (1, "") and "is not suppressed (HTTP 404)" in err
