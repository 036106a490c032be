"""forewarn runs out of file descriptors under a running daemon, then gets them back.

How: ``forewarn run`` is a real subprocess, and the test lowers its RLIMIT_NOFILE soft limit
to 3 from outside with ``prlimit(2)`` (same user, hard limit kept), then raises it back.
Descriptors already open keep working (the listening socket, the database, the log pipe);
every new one fails with EMFILE, exactly as when clients hold all of them: each probe's
connect fails with "Too many open files", the ops email cannot connect either. The targets
stay healthy throughout, so any incident or customer email would be false.

Expected: every run is set aside (no failure stored, no check down, no incident, no customer
email), counted in ``forewarn_probe_inconclusive_total{cause="local_resources"}``, logged once
for the episode, and ops told once, by email, as soon as a descriptor is free to send it.
"""

from __future__ import annotations

import contextlib
import resource
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.store.sqlite import DB_NAME
from tests.reliability.daemon_process import DaemonProcess
from tests.reliability.target import Target
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

CHECKS_YAML = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", timezone: UTC, probe_workers: {workers}}}
defaults: {{interval: 100ms, timeout: 1s, retry_interval: 50ms, failure_threshold: 2,
           success_threshold: 1}}
services:
  - {{id: tracking, name: Parcel tracking}}
  - {{id: labels, name: Shipping labels}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{url}tracking"}}
  - {{id: labels-tcp, service: labels, type: tcp, host: 127.0.0.1, port: {port}}}
customers:
  - {{id: acme, name: ACME, email: it@acme.example, language: en, services: [tracking, labels]}}
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  customer_delay: 0s
  digest_window: 0s
  update_every: 1h
  retry_initial: 100ms
  retry_max: 200ms
  ops: [{{type: email, name: oncall, to: oncall@forewarn.example}}]
"""
CHECKS = ("tracking-ws", "labels-tcp")


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the daemon's database on a read-only connection of our own."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def _set_soft_nofile(pid: int, soft: int) -> int:
    """Change the running daemon's RLIMIT_NOFILE soft limit from outside (prlimit(2)).

    Returns the soft limit it had.
    """
    before, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    return before


async def _inconclusive(port: int) -> dict[tuple[str, str], float]:
    """``forewarn_probe_inconclusive_total`` by (check, cause), from /metrics."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return {
        (sample.labels["check"], sample.labels["cause"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "forewarn_probe_inconclusive_total"
    }


@pytest.mark.parametrize("workers", [0, 1], ids=["in-daemon", "probe-worker"])
async def test_running_out_of_descriptors_is_inconclusive_logged_once_and_told_to_ops_once(
    tmp_path: Path, target: Target, smtp: FailingSmtpServer, workers: int
) -> None:
    """With no descriptor to spare, probes are set aside: no incident, no customer email.

    With a probe worker, the worker runs short (its results come to the daemon by pipe).
    """
    state = tmp_path / "state"
    config = tmp_path / "checks.yaml"
    port = int(target.url.rstrip("/").rpartition(":")[2])
    text = CHECKS_YAML.format(
        state=state, url=target.url, port=port, smtp_port=smtp.port, workers=workers
    )
    config.write_text(text, encoding="utf-8")
    db = state / DB_NAME
    async with DaemonProcess(config, tmp_path / "logs") as daemon:
        await daemon.start()
        up = "SELECT COUNT(*) FROM transitions WHERE new_status = 'up'"
        await until(lambda: _query(db, up)[0][0] == len(CHECKS), timeout_s=10)

        def named(event: str) -> list[dict[str, Any]]:
            return [e for e in daemon.log_events() if e.get("event") == event]

        prober = named("worker_started")[0]["pid"] if workers else daemon.pid
        usual = _set_soft_nofile(prober, 3)  # every new descriptor now fails with EMFILE
        await until(lambda: named("local_exhaustion"), timeout_s=5)
        # About ten runs of each check, every one set aside: nothing judged failed meanwhile.
        await holds(lambda: not [e for e in named("probe") if not e["ok"]], 1.0)
        _set_soft_nofile(prober, usual)  # descriptors come back

        await until(lambda: len(smtp.messages) == 1, timeout_s=10)  # ops, once it can connect
        await holds(lambda: len(smtp.messages) == 1, 0.5)
        counted = await _inconclusive(daemon.port)
        episodes = named("local_exhaustion")
        transitions = _query(db, "SELECT check_id, new_status FROM transitions")
        incidents = _query(db, "SELECT COUNT(*) FROM incidents")[0][0]
        failures = _query(db, "SELECT COUNT(*) FROM results WHERE ok = 0")[0][0]
        assert await daemon.stop() == 0

    assert incidents == 0 and failures == 0
    assert sorted(transitions) == sorted((c, "up") for c in CHECKS)  # never down
    (ops,) = smtp.messages
    assert ops.rcpt_tos == ["oncall@forewarn.example"]  # no customer email at all
    assert "out of resources" in str(ops.message["Subject"])
    assert "EMFILE" in ops.message.get_body().get_content()  # type: ignore[union-attr]
    assert len(episodes) == 1 and episodes[0]["detail"].endswith("(Too many open files)")
    for check in CHECKS:  # re-run every retry_interval, each run set aside and counted
        assert counted.get((check, "local_resources"), 0.0) >= 3, counted
