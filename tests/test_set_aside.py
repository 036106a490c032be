"""One window whose notice cannot be made is set aside; every other notice still goes out.

A real daemon, its real file transport, and a template override that fails for one window
only (a division by zero on that window's id): the other window's customers get their
notice, ops get an email naming the window set aside, and the metric counts it once.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from monitor.config.load import load_config
from monitor.daemon import Daemon
from monitor.domain.maintenance import Window
from monitor.probes.base import ProbeResult
from monitor.store.sqlite import SqliteStore
from tests.waiting import holds, until

CONFIG = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0"}}
services:
  - {{id: tracking, name: {{en: Tracking}}}}
  - {{id: labels, name: {{en: Labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: tcp, host: 127.0.0.1, port: {port}}}
  - {{id: labels-ws, service: labels, type: tcp, host: 127.0.0.1, port: {port}}}
customers:
  - {{id: acme, name: ACME, email: it@acme.example, language: en, services: [tracking, labels]}}
notices:
  from: "Support <support@example.net>"
  templates_dir: templates
  ops: [{{type: email, to: ops@example.net}}]
maintenance:
  - {{id: boom, services: [labels], start: "{start}", end: "{end}", announce_before: 0s}}
  - {{id: release-42, services: [tracking], start: "{start}", end: "{end}", announce_before: 0s}}
"""
# Fails for an id of four letters ("boom") and renders for any other.
SUBJECT = "[Maintenance] {{ 100 // ((maintenance.id | length) - 4) }} {{ maintenance.id }}"


def subjects(state: Path) -> list[str]:
    """The subjects of every email written so far."""
    found = []
    for path in sorted(state.rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append(str(message["Subject"]))
    return found


async def test_a_window_that_cannot_be_rendered_is_set_aside_and_the_others_go_out(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    """The good window's notice goes out; the bad one is logged, counted, and ops told."""
    (tmp_path / "templates" / "en").mkdir(parents=True)
    (tmp_path / "templates" / "en" / "maintenance_started.subject").write_text(SUBJECT)
    now = time.time()
    iso = [datetime.fromtimestamp(t, UTC).isoformat() for t in (now - 60, now + 3600)]
    state = tmp_path / "state"
    (tmp_path / "checks.yaml").write_text(
        CONFIG.format(state=state, port=unused_tcp_port, start=iso[0], end=iso[1])
    )
    daemon = Daemon(load_config(tmp_path / "checks.yaml"))
    logs: list[MutableMapping[str, Any]]
    with structlog.testing.capture_logs() as logs:
        await daemon.start()
        try:
            await until(lambda: len(subjects(state)) >= 2, timeout_s=10)
            await holds(lambda: len(subjects(state)) == 2, for_s=1.0)  # once, not every tick
        finally:
            await daemon.stop()
    sent = subjects(state)
    assert "[Maintenance] 16 release-42" in sent
    assert any("set aside" in s for s in sent), sent
    assert not any("boom" in s and "Maintenance" in s for s in sent)
    aside = [e for e in logs if e["event"] == "set_aside"]
    assert [(e["kind"], e["id"]) for e in aside] == [("window", "boom")]
    assert "ZeroDivisionError" in aside[0]["error"]
    counted = daemon.metrics.set_aside.labels("window")._value.get()
    assert counted == 1
    assert not [e for e in logs if e["event"] == "store_write_failed"]


OLD_DB = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, retry_interval: 100ms, failure_threshold: 1}}
services:
  - {{id: tracking, name: {{en: Tracking}}}}
  - {{id: labels, name: {{en: Labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: tcp, host: 127.0.0.1, port: {port}}}
customers:
  - {{id: acme, name: ACME, email: it@acme.example, language: en, services: [tracking, labels]}}
notices: {{from: "Support <support@example.net>", customer_delay: 0s, digest_window: 0s}}
"""


async def test_a_year_9999_window_from_an_old_database_blocks_no_notice_and_no_page(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    """A window ending 9999-12-31, stored before dates were bounded: notices and pages work."""
    state = tmp_path / "state"
    store = SqliteStore.open(state)
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    store.save_window(Window("far", ("labels",), time.time() - 60, far, 0.0, {"en": "x"}))
    store.write_results([ProbeResult("tracking-ws", time.time() - 3600, ok=True)])  # it was up
    store.close()
    (tmp_path / "checks.yaml").write_text(OLD_DB.format(state=state, port=unused_tcp_port))
    daemon = Daemon(load_config(tmp_path / "checks.yaml"))
    with structlog.testing.capture_logs() as logs:
        await daemon.start()
        try:
            await until(lambda: any("[Incident]" in s for s in subjects(state)), timeout_s=10)
            pages = {}
            async with aiohttp.ClientSession() as session:
                for path in ("/", "/feed.atom", "/api/v1/status"):
                    async with session.get(f"http://127.0.0.1:{daemon.port}{path}") as response:
                        pages[path] = (response.status, await response.text())
        finally:
            await daemon.stop()
    assert {path: status for path, (status, _) in pages.items()} == dict.fromkeys(pages, 200)
    # Shown at the span's edge (2199-12-31T23:59:59Z) in the daemon's zone, Europe/Paris.
    assert "au 01/01/2200 à 00:59 (Europe/Paris)" in pages["/feed.atom"][1]
    assert not [e for e in logs if e["event"] in ("store_write_failed", "tick_failed")]
