"""An operator's cancel wins over checks.yaml, says so in the log, and can be re-planned.

End to end: the real daemon (reloaded), the real CLI, a real SMTP server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

import pytest
import structlog

from monitor.config.load import Config
from monitor.daemon import Daemon
from tests.operator_scene import (
    LABELS,
    ConfigWriter,
    forewarn,
    iso,
    kinds,
    to,
)
from tests.smtp_server import FailingSmtpServer
from tests.waiting import until

pytestmark = pytest.mark.usefixtures("quiet_logs")


async def test_a_cancelled_window_stays_cancelled_logs_why_and_is_replanned(
    capsys: pytest.CaptureFixture[str],
    write_config: ConfigWriter,
    running: Callable[[Config], Awaitable[Daemon]],
    smtp: FailingSmtpServer,
) -> None:
    """Cancel from the CLI; edit checks.yaml: logged, not un-cancelled; add --id re-plans it."""
    start, end = time.time() + 3600, time.time() + 7200
    window = (
        f"[{{id: release-42, services: [labels], start: '{iso(start)}', end: '{iso(end)}',"
        " announce_before: 2h, summary: {fr: Mise à jour, en: Upgrade}}]"
    )
    config = write_config(maintenance=window)
    daemon = await running(config)
    await until(lambda: len(kinds(smtp, "maintenance_planned")) == 2)
    status, _, _ = await forewarn(capsys, config, "maintenance", "cancel", "release-42")
    assert status == 0
    await until(lambda: len(kinds(smtp, "maintenance_cancelled")) == 2)

    later = iso(start + 600)
    source = config.source.read_text(encoding="utf-8")
    config.source.write_text(source.replace(iso(start), later), encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        assert await daemon.reload() == []
    [warning] = [e for e in logs if e["event"] == "maintenance_config_overridden"]
    assert warning["window"] == "release-42" and warning["differs"] == ["start", "cancelled"]
    assert "maintenance add --id release-42" in warning["hint"]
    [kept] = [w for w in daemon.engine.windows if w.id == "release-42"]
    assert kept.cancelled and kept.start == pytest.approx(start, abs=0.001)

    status, out, _ = await forewarn(
        capsys, config, "maintenance", "add", "--id", "release-42", "--services", "labels",
        "--start", later, "--end", iso(end), "--announce-before", "2h",
    )  # fmt: skip
    assert status == 0
    assert re.match(r"maintenance release-42-2 planned: labels from ", out), out
    await until(lambda: len(kinds(smtp, "maintenance_planned")) == 4)
    assert to(kinds(smtp, "maintenance_planned")[2:]) == sorted(LABELS)
    assert len(kinds(smtp, "maintenance_cancelled")) == 2
