"""The disk fills up under a running daemon, then space comes back.

How the disk is filled: ``forewarn run`` is a real subprocess, and the test lowers its
RLIMIT_FSIZE soft limit to 0 from outside with ``prlimit(2)`` (same user, hard limit left as
it is), then raises it back. Every write() the daemon makes to a file from then on fails
(EFBIG; CPython ignores SIGXFSZ, which the test checks), while reads, sockets and pipes keep
working: the daemon's stdout is a pipe, as under systemd's journal. This was chosen because it
needs no root, hits the real write path (the SQLite WAL, the database file) and can be undone;
a small tmpfs needs mount rights, and ``PRAGMA max_page_count`` can only be set from inside
the daemon's own connection. One difference from a real ENOSPC: SQLite reports EFBIG as
``disk I/O error`` (SQLITE_IOERR_WRITE) rather than ``database or disk is full``; the daemon
handles every refused write the same way.

Expected: the failure is logged once per episode, probing goes on (/healthz and the probe
counters on /metrics), results and the incident opened meanwhile are kept and written once
space returns (its first notice then goes out), and nothing committed before is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import sqlite3
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from monitor.store.sqlite import DB_NAME
from tests.reliability.target import Target
from tests.smtp_server import FailingSmtpServer
from tests.waiting import holds, until

ROOT = Path(__file__).resolve().parents[2]

CHECKS_YAML = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", public_url: "https://status.example.net",
         timezone: UTC}}
defaults: {{interval: 100ms, timeout: 1s, retry_interval: 50ms, failure_threshold: 2,
           success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{url}tracking"}}
  - {{id: labels-ws, service: labels, type: http, url: "{url}labels"}}
customers:
  - {{id: acme, name: ACME, email: ops@acme.example, language: fr, services: [tracking, labels]}}
  - {{id: globex, name: Globex, email: it@globex.example, language: en, services: [tracking]}}
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  customer_delay: 0s
  update_every: 1h
  stable_for: 300ms
  retry_initial: 100ms
  digest_window: 0s
"""


class Forewarn:
    """``python -m monitor run`` with its JSON log read from a pipe; killed on exit."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.events: list[dict[str, Any]] = []
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor",
            "run",
            "--config",
            str(self.config),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.reader = asyncio.create_task(self._read())
        process = self.process
        await until(lambda: self.named("started") or process.returncode is not None, 30)
        assert process.returncode is None, self.events
        self.port = int(self.named("started")[0]["port"])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self.reader is not None:
            await self.reader

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            try:
                self.events.append(json.loads(line))
            except json.JSONDecodeError:
                self.events.append({"event": "text", "line": line.decode(errors="replace")})

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def named(self, event: str, **fields: object) -> list[dict[str, Any]]:
        """The log events called ``event`` with these field values."""
        return [
            e
            for e in self.events
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]

    def set_file_size_limit(self, soft: int) -> None:
        """Change the running daemon's RLIMIT_FSIZE soft limit from outside (prlimit(2))."""
        _, hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (soft, hard))

    async def get(self, path: str) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=2)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{self.port}{path}") as response,
        ):
            return response.status, await response.text()

    async def probes(self, check: str) -> float:
        """``forewarn_probes_total`` of one check, from /metrics."""
        status, text = await self.get("/metrics")
        assert status == 200
        found = re.search(rf'^forewarn_probes_total{{check="{check}"}} (\S+)$', text, re.M)
        return 0.0 if found is None else float(found.group(1))

    async def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            return await self.process.wait()


def _query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Read the daemon's file on a read-only connection of our own."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def _ignores_sigxfsz(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    mask = int(re.search(r"^SigIgn:\s+([0-9a-f]+)$", status, re.M).group(1), 16)  # type: ignore[union-attr]
    return bool(mask >> (signal.SIGXFSZ - 1) & 1)


async def test_a_full_disk_is_logged_once_probing_goes_on_and_writing_resumes_losing_nothing(
    tmp_path: Path, target: Target, smtp: FailingSmtpServer
) -> None:
    """With no file writes allowed the daemon keeps probing, then writes all it kept and mails."""
    state = tmp_path / "state"
    config = tmp_path / "checks.yaml"
    config.write_text(
        CHECKS_YAML.format(state=state, url=target.url, smtp_port=smtp.port), encoding="utf-8"
    )
    db = state / DB_NAME
    async with Forewarn(config) as daemon:
        assert _ignores_sigxfsz(daemon.pid)
        up = "SELECT COUNT(*) FROM transitions WHERE new_status = 'up'"
        await until(lambda: _query(db, up)[0][0] == 2, timeout_s=10)
        some = "SELECT COUNT(*) FROM results"
        await until(lambda: _query(db, some)[0][0] >= 10, timeout_s=5)
        before = {
            table: _query(db, f"SELECT * FROM {table}")  # noqa: S608
            for table in ("results", "transitions", "result_minutes")
        }

        daemon.set_file_size_limit(0)  # the disk is full
        full_at = time.time()
        probes_at_full = await daemon.probes("tracking-ws")
        target.broken.add("tracking")
        await until(lambda: daemon.named("store_write_failed", what="commit"), timeout_s=5)
        await until(lambda: daemon.named("store_write_failed", what="results"), timeout_s=5)
        # Probing goes on: counters advance and /healthz answers, for a second of failed ticks.
        # /healthz may say degraded when a loaded host makes the event loop late, or once
        # commits have failed a few times in a row (it reports them), never stalled.
        deadline = time.monotonic() + 1.0
        answers: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            status, body = await daemon.get("/healthz")
            answers.append(json.loads(body))
            assert status == 200 or {"loop_lag_s", "commit_failures"} & answers[-1].keys(), body
            await asyncio.sleep(0.05)
        assert daemon.process is not None and daemon.process.returncode is None
        probes_while_full = await daemon.probes("tracking-ws") - probes_at_full
        failed = [e for e in daemon.events if e.get("event") == "store_write_failed"]
        results_now = _query(db, "SELECT COUNT(*) FROM results")[0][0]
        await holds(lambda: not smtp.messages, 0.2)  # the incident is not committed yet

        daemon.set_file_size_limit(resource.RLIM_INFINITY)  # space comes back
        freed_at = time.time()
        await until(lambda: daemon.named("store_write_recovered", what="results"), timeout_s=5)
        await until(lambda: daemon.named("store_write_recovered", what="commit"), timeout_s=5)
        await until(lambda: len(smtp.messages) == 2, timeout_s=5)  # acme and globex, first
        during = _query(
            db,
            "SELECT check_id, COUNT(*) FROM results WHERE at >= ? AND at < ? GROUP BY check_id",
            full_at,
            freed_at,
        )
        incident = _query(db, "SELECT first_failure_at FROM incidents")
        assert await daemon.stop() == 0
    after = {
        table: set(_query(db, f"SELECT * FROM {table}"))  # noqa: S608
        for table in ("results", "transitions")
    }
    integrity = _query(db, "PRAGMA integrity_check")
    recovered = [e for e in daemon.events if e.get("event") == "store_write_recovered"]
    print(
        f"while full: {probes_while_full:.0f} probes of tracking-ws, results rows stayed "
        f"{results_now} (before: {len(before['results'])}); failures logged: "
        f"{[(e['what'], e['error']) for e in failed]}; recovered: "
        f"{[(e['what'], e['failures']) for e in recovered]}; written back: {during}; "
        f"/healthz: {sum(a['status'] == 'ok' for a in answers)}/{len(answers)} ok"
    )
    assert probes_while_full >= 5
    assert any("commit_failures" in a for a in answers), "/healthz reports failing commits"
    assert sorted(e["what"] for e in failed) == ["commit", "results"]  # once per episode
    assert results_now == len(before["results"])  # nothing could be written meanwhile
    assert dict(during).keys() == {"tracking-ws", "labels-ws"}  # kept, then written
    assert all(count >= 5 for _, count in during)
    assert [m.message["X-Forewarn-Kind"] for m in smtp.messages] == ["first", "first"]
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == [
        "it@globex.example",
        "ops@acme.example",
    ]
    (first_failure_at,) = incident[0]
    assert full_at <= first_failure_at < freed_at  # the transition of the episode was kept
    assert set(before["results"]) <= after["results"]
    assert set(before["transitions"]) <= after["transitions"]
    assert integrity == [("ok",)]
