"""Benchmark section "fan-out": one incident that must reach 10,000 customers by SMTP.

A checks.yaml with one service, one http check and 10,000 customers (quick: 2,000) from a
customers CSV is written to a temporary directory. The daemon runs as its own process
(``python -m monitor run``, logging JSON lines at info to a file, as under journald) so that
its CPU seconds and memory are its own; the target API and the SMTP server (aiosmtpd, which
only counts what it accepts) run in this process on 127.0.0.1. Once the check is up, the
target starts answering 503; the figures are taken from the SMTP server's acceptance times,
the daemon's state database (first failed probe, confirmation, announcement) and its log
(when the announcement and its notices were committed to the outbox):

* announcement → all accepted, the goal being 10,000 in under 30 s, and its parts: planning
  and committing the notices, then sending them; emails per second;
* the daemon's CPU seconds over the fan-out and its resident memory (before, peak).

``notices.max_per_second`` is left at its default (none: unthrottled) unless
``--max-per-second`` is given. ``--profile`` runs the daemon under pyinstrument (if installed)
and prints the top of its profile.

Run from the repository root: ``python -m bench.fanout [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from monitor.cli.smtpsink import SmtpSink
from monitor.config.load import NoticesConfig

ROOT = Path(__file__).resolve().parents[1]
GOAL_EMAILS, GOAL_S = 10_000, 30.0
TICKS = os.sysconf("SC_CLK_TCK")

CONFIG = """\
# Written by bench/fanout.py: one service, one check, {customers} customers.
daemon:
  state_dir: {state}
  listen: 127.0.0.1:0
  public_url: https://status.example.net
  timezone: Europe/Paris
defaults: {{interval: 2s, timeout: 2s, retry_interval: 500ms, failure_threshold: 3,
           success_threshold: 2}}
services:
  - id: tracking
    name: {{fr: Suivi de colis, en: Parcel tracking}}
checks:
  - id: tracking-ws
    service: tracking
    type: http
    url: {url}
    expect: {{status: [200], body_contains: parcelNumber}}
customers: {{file: customers.csv}}
notices:
  from: "Support Transporteur <support@carrier.example>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp}, timeout: 30s}}
  customer_delay: 0s
  digest_window: 0s
{limit}"""

ZONES = ("Europe/Paris", "Europe/London", "Europe/Berlin", "America/Montreal")


class CountingSink(SmtpSink):
    """An SMTP server that accepts everything and keeps only when and to whom, not the mail."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted_at: list[float] = []
        self.recipients: set[str] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: count the message (no parsing: the sink must stay light)."""
        self.accepted_at.append(time.time())
        self.recipients.update(envelope.rcpt_tos)
        return "250 2.0.0 OK: queued"


class Target:
    """The monitored API, answering 200 with a parcel, or 503 once broken."""

    def __init__(self) -> None:
        self.broken = False
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1."""

        async def track(_: web.Request) -> web.Response:
            if self.broken:
                return web.json_response({"status": "KO"}, status=503)
            return web.json_response({"parcelNumber": "6A0", "status": "OK"})

        app = web.Application()
        app.router.add_get("/tracking", track)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/tracking"

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()


def write_config(folder: Path, customers: int, url: str, smtp: int, limit: float | None) -> Path:
    """checks.yaml and its customers.csv in ``folder``; returns the checks.yaml path."""
    rows = ["id,name,email,language,services,timezone,detail"]
    for n in range(customers):
        language = "en" if n % 3 == 0 else "fr"
        detail = "technical" if n % 20 == 0 else "summary"
        rows.append(
            f"c{n:05d},Customer {n:05d} SARL,ops@c{n:05d}.example,{language},tracking,"
            f"{ZONES[n % len(ZONES)]},{detail}"
        )
    (folder / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    path = folder / "checks.yaml"
    extra = "" if limit is None else f"  max_per_second: {limit:g}\n"
    text = CONFIG.format(
        customers=customers, state=folder / "state", url=url, smtp=smtp, limit=extra
    )
    path.write_text(text, encoding="utf-8")
    return path


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def proc_memory_mib(pid: int) -> tuple[float, float]:
    """Resident memory now (VmRSS) and its peak so far (VmHWM), in MiB."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name = line.split(":", 1)[0] + ":"
            if name in values:
                values[name] = int(line.split()[1]) / 1024
    return values["VmRSS:"], values["VmHWM:"]


class LogTail:
    """Reads the daemon's JSON log lines as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.events: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """New complete events since the last call."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        new = []
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError):  # a non-JSON line, e.g. a traceback
                new.append(json.loads(line))
        self.events += new
        return new

    def find(self, **match: Any) -> dict[str, Any] | None:
        """The first event read so far whose keys have these values."""
        return next((e for e in self.events if all(e.get(k) == v for k, v in match.items())), None)

    async def wait_for(
        self,
        timeout: float,  # noqa: ASYNC109
        process: asyncio.subprocess.Process,
        **match: Any,
    ) -> dict[str, Any]:
        """Wait until an event with these values is logged by ``process``, still running."""
        async with asyncio.timeout(timeout):
            while (event := self.find(**match)) is None:
                if process.returncode is not None:
                    tail = self.path.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise RuntimeError(f"the daemon exited ({process.returncode}):\n{tail}")
                self.read()
                await asyncio.sleep(0.05)
        return event


def logged_at(event: dict[str, Any]) -> float:
    """The UNIX time of a structlog event's ISO timestamp."""
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def daemon_argv(config: Path, profile_to: Path | None) -> list[str]:
    """The daemon's command line, under pyinstrument when profiling."""
    run = ["-m", "monitor", "--log-level", "info", "run", "-c", str(config)]
    if profile_to is None:
        return [sys.executable, *run]
    return [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile_to), *run]


def incident_row(state: Path) -> dict[str, Any]:
    """The (only) incident and the outbox's counts, from the stopped daemon's database."""
    with contextlib.closing(
        sqlite3.connect(f"file:{state / 'forewarn.db'}?mode=ro", uri=True)
    ) as db:
        db.row_factory = sqlite3.Row
        incident = db.execute("SELECT * FROM incidents ORDER BY opened_at LIMIT 1").fetchone()
        counts = dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
    return {**(dict(incident) if incident else {}), "outbox": counts}


async def fan_out(
    folder: Path, customers: int, limit: float | None, profile_to: Path | None, patience: float
) -> dict[str, Any]:
    """Start everything, break the target, wait for every email; stop everything."""
    target, sink = Target(), CountingSink()
    daemon: asyncio.subprocess.Process | None = None
    log_file: TextIO | None = None
    try:
        await target.start()
        await sink.start()
        config = write_config(folder, customers, target.url, sink.port, limit)
        log_path = folder / "daemon.log"
        log_file = log_path.open("w", encoding="utf-8")
        daemon = await asyncio.create_subprocess_exec(
            *daemon_argv(config, profile_to), cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
        log = LogTail(log_path)
        started = await log.wait_for(60, daemon, event="started")
        await log.wait_for(60, daemon, event="transition", check="tracking-ws", new="up")
        rss_idle, _ = proc_memory_mib(daemon.pid)
        cpu_before = proc_cpu_s(daemon.pid)
        sink_cpu_before = time.process_time()
        target.broken = True
        broke_at = time.time()
        print(f"  target broken; waiting for {customers:,} emails", flush=True)
        deadline = broke_at + patience
        shown = broke_at
        while len(sink.accepted_at) < customers and time.time() < deadline:
            await asyncio.sleep(0.05)
            if time.time() - shown >= 2.0:
                shown = time.time()
                print(
                    f"  {shown - broke_at:6.1f} s after the break: "
                    f"{len(sink.accepted_at):>6,} accepted",
                    flush=True,
                )
        cpu_after = proc_cpu_s(daemon.pid)
        load = os.getloadavg()[0]  # other processes competing for the CPUs skew the rates
        sink_cpu = time.process_time() - sink_cpu_before
        rss_after, rss_peak = proc_memory_mib(daemon.pid)
        log.read()
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)  # a clean stop: the daemon handles SIGTERM
            try:
                await asyncio.wait_for(daemon.wait(), 60)
            except TimeoutError:
                daemon.kill()
                await daemon.wait()
        if log_file is not None:
            log_file.close()
        await sink.stop()
        await target.stop()
    committed = log.find(event="incident", change="announced")
    return {
        "loop": str(started.get("loop", "asyncio")),  # uvloop when installed, lately
        "broke_at": broke_at,
        "load_average_1m": round(load, 2),
        "accepted_at": sorted(sink.accepted_at),
        "recipients": len(sink.recipients),
        "connections": sink.connections,
        "cpu_s": cpu_after - cpu_before,
        "sink_cpu_s": sink_cpu,
        "rss_idle_mib": rss_idle,
        "rss_after_mib": rss_after,
        "rss_peak_mib": rss_peak,
        "committed_at": logged_at(committed) if committed else None,
        "deliveries_logged": sum(1 for e in log.events if e.get("event") == "delivery"),
        "db": incident_row(folder / "state"),
    }


def row(label: str, value: str) -> None:
    """One line of the printed table."""
    print(f"  {label:<46} {value}", flush=True)


def report(run: dict[str, Any], customers: int, quick: bool) -> dict[str, Any]:
    """Print the figures of one run and return them."""
    db, accepted = run["db"], run["accepted_at"]
    count = len(accepted)
    announced = db.get("customers_told_at")
    first_failure, opened = db.get("first_failure_at"), db.get("opened_at")
    if not accepted or announced is None:
        print(f"  FAILED: {count} emails accepted, incident: {db}")
        return {"customers": customers, "accepted": count, "goal_met": False}
    first, last = accepted[0], accepted[-1]
    committed = run["committed_at"]
    send_rate = (count - 1) / (last - first) if last > first else float("nan")
    overall = last - announced
    row("daemon event loop", run["loop"])
    row("target broken → first failed probe", f"{first_failure - run['broke_at']:7.2f} s")
    row("first failed probe → incident confirmed", f"{opened - first_failure:7.2f} s")
    row("confirmed → announced (customers_told_at)", f"{announced - opened:7.2f} s")
    if committed is not None:
        row("announced → notices committed to the outbox", f"{committed - announced:7.2f} s")
        row("committed → first email accepted", f"{first - committed:7.2f} s")
    row("first → last email accepted", f"{last - first:7.2f} s")
    row(f"announced → all {count:,} accepted", f"{overall:7.2f} s")
    row(f"first failed probe → all {count:,} accepted", f"{last - first_failure:7.2f} s")
    row("emails/s while sending (first → last)", f"{send_rate:7.0f}")
    row("emails/s overall (announced → last)", f"{count / overall:7.0f}")
    row(
        "distinct recipients / SMTP connections",
        f"{run['recipients']:,} / {run['connections']:,}",
    )
    row("load average (1 min) at the end", f"{run['load_average_1m']:7.2f}")
    row("outbox after stop", ", ".join(f"{k} {v:,}" for k, v in sorted(db["outbox"].items())))
    busy = run["cpu_s"] / overall  # what it used before the announcement is next to nothing
    row("daemon CPU over the fan-out", f"{run['cpu_s']:7.2f} s")
    row("daemon CPU per email", f"{run['cpu_s'] / count * 1000:7.2f} ms")
    # Well below 100 %: the daemon waited (on SMTP, fsync) or other processes took the CPU.
    row("daemon CPU share of announced → last accepted", f"{busy:7.0%}")
    row("SMTP server and target CPU (this process)", f"{run['sink_cpu_s']:7.2f} s")
    row(
        "daemon RSS idle / after / peak",
        f"{run['rss_idle_mib']:.0f} / {run['rss_after_mib']:.0f} / {run['rss_peak_mib']:.0f} MiB",
    )
    needed = GOAL_EMAILS / GOAL_S
    if count < customers:
        met, verdict = False, f"MISSED: only {count:,} of {customers:,} accepted"
    elif customers >= GOAL_EMAILS:
        met = overall < GOAL_S
        verdict = f"{'MET' if met else 'MISSED'} ({overall:.1f} s)"
    else:  # quick: a smaller fan-out, projected to 10,000 (planning grows with the customers)
        projected = (first - announced) * GOAL_EMAILS / count + GOAL_EMAILS / send_rate
        met = projected < GOAL_S
        verdict = f"{'MET' if met else 'MISSED'} (projected {projected:.1f} s from this run)"
    print(f"  goal: {GOAL_EMAILS:,} accepted in under {GOAL_S:.0f} s (≥ {needed:.0f}/s): {verdict}")
    if not met:
        print("  (--profile shows where the daemon's time goes)")
    figures: dict[str, Any] = {
        "customers": customers,
        "accepted": count,
        "daemon_loop": run["loop"],
        "plan_and_commit_s": None if committed is None else round(committed - announced, 2),
        "announced_to_first_email_s": round(first - announced, 2),
        "first_to_last_email_s": round(last - first, 2),
        "announced_to_all_s": round(overall, 2),
        "first_failure_to_all_s": round(last - first_failure, 2),
        "emails_per_s_sending": round(send_rate, 1),
        "emails_per_s_overall": round(count / overall, 1),
        "daemon_cpu_s": round(run["cpu_s"], 2),
        "daemon_cpu_ms_per_email": round(run["cpu_s"] / count * 1000, 2),
        "daemon_cpu_share": round(busy, 2),
        "load_average_1m": run["load_average_1m"],
        "daemon_rss_idle_mib": round(run["rss_idle_mib"], 1),
        "daemon_rss_peak_mib": round(run["rss_peak_mib"], 1),
        "goal_met": met,
    }
    if quick:
        figures["goal_projected"] = True
    return figures


def main(
    quick: bool = False, max_per_second: float | None = None, profile: bool = False
) -> dict[str, Any]:
    """Run one fan-out (and say what throttles it); return its figures."""
    customers = 2_000 if quick else GOAL_EMAILS
    default = NoticesConfig().max_per_second
    limit = max_per_second
    shown = "none (unthrottled)" if default is None else f"{default:g}/s"
    print(
        f"fan-out: one incident, {customers:,} customers, real SMTP on 127.0.0.1; "
        f"notices.max_per_second default: {shown}"
        + ("" if limit is None else f", this run: {limit:g}/s")
    )
    if profile and importlib.util.find_spec("pyinstrument") is None:
        print("  pyinstrument is not installed (pip install pyinstrument): no profile")
        profile = False
    with tempfile.TemporaryDirectory(prefix="forewarn-bench-fanout-") as tmp:
        folder = Path(tmp)
        profile_to = folder / "profile.txt" if profile else None
        run = asyncio.run(fan_out(folder, customers, limit, profile_to, 120 if quick else 600))
        figures = report(run, customers, quick)
        figures["max_per_second"] = "default (none)" if limit is None else limit
        if profile_to is not None and profile_to.exists():
            print("  pyinstrument profile of the daemon process (whole run):")
            for line in profile_to.read_text(encoding="utf-8").splitlines()[:80]:
                print("    " + line)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 customers instead of 10,000")
    parser.add_argument("--max-per-second", type=float, default=None, help="notices rate limit")
    parser.add_argument("--profile", action="store_true", help="run the daemon under pyinstrument")
    args = parser.parse_args()
    main(quick=args.quick, max_per_second=args.max_per_second, profile=args.profile)
