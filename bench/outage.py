"""Benchmark section "outage to inbox": how soon the affected customer's inbox hears of it.

The real ``monitor.daemon.Daemon`` runs in this process with 1,000 http checks (quick: 200)
against one aiohttp target on 127.0.0.1 that answers every path (200, or 503 for the paths in
its "broken" set). Each check has its own service and each service one customer, so one broken
check's incident emails exactly one customer; notices go over real SMTP to a ``SmtpSink`` on
a free port, with ``customer_delay: 0s`` and ``digest_window: 0s``. Timing is a production
one: interval 10s, retry_interval 1s, failure_threshold 3, success_threshold 2, stable_for 5s
(quick: 3s, 500ms, 3, 2, 2s, so that it fits in a minute).

Then 20 outages (quick: 5) of randomly chosen checks, one after the other. For each: break
the target (outage start), wait for the customer's first notice to be accepted by the SMTP
server, restore it, and wait for the resolution. The first failed probe is the incident's
``first_failure_at``, the time that probe started. Measured, with median, p95 (nearest rank)
and max:

* (a) outage start → first notice accepted: includes up to one ``interval`` before the next
  scheduled probe sees the failure;
* (b) first failed probe → first notice accepted: the confirmation (``failure_threshold - 1``
  re-probes ``retry_interval`` apart), then planning and delivery; its p95 is compared with the
  goal ``retry_interval × failure_threshold + 1 s``;
* (c) restore → resolution accepted: up to one ``interval`` before a probe sees the recovery
  (a down check is probed on its grid), ``success_threshold - 1`` re-probes, then ``stable_for``
  and up to one 250 ms tick.

Run from the repository root: ``python -m bench.outage [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.cli.smtpsink import SmtpSink
from monitor.config.load import Config, load_config
from monitor.daemon import Daemon
from monitor.domain.detector import CheckStatus
from monitor.runtime.logs import configure_logging

_KIND = re.compile(rb"^X-Forewarn-Kind: *([a-z_]+)", re.MULTILINE | re.IGNORECASE)

CONFIG = """\
# Written by bench/outage.py: {checks} http checks, one service and one customer each.
daemon:
  state_dir: {state}
  listen: 127.0.0.1:0
  public_url: https://status.example.net
  timezone: Europe/Paris
defaults: {{interval: {interval}, timeout: {timeout}, retry_interval: {retry},
           failure_threshold: {failures}, success_threshold: {successes}}}
customers: {{file: customers.csv}}
notices:
  from: "Support <support@example.net>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp}, timeout: 10s}}
  customer_delay: 0s
  digest_window: 0s
  update_every: 30m
  stable_for: {stable}
services:
"""


@dataclass(frozen=True)
class Timing:
    """The detection and notice timing of one run, as checks.yaml durations and in seconds."""

    interval: float
    retry: float
    failures: int
    successes: int
    stable_for: float
    timeout: float

    @property
    def goal_s(self) -> float:
        """The goal for first failed probe → first notice accepted."""
        return self.retry * self.failures + 1.0


FULL = Timing(interval=10.0, retry=1.0, failures=3, successes=2, stable_for=5.0, timeout=5.0)
QUICK = Timing(interval=3.0, retry=0.5, failures=3, successes=2, stable_for=2.0, timeout=2.0)


def duration(seconds: float) -> str:
    """``seconds`` as a checks.yaml duration."""
    return f"{seconds:g}s" if seconds >= 1 else f"{seconds * 1000:g}ms"


def check_id(n: int) -> str:
    """The id of check ``n`` (its service and its customer share the number)."""
    return f"chk-{n:04d}"


def address(n: int) -> str:
    """The email address of the customer of service ``n``."""
    return f"ops@c{n:04d}.example"


class Target:
    """One aiohttp app answering every path: 200, or 503 for the paths in ``broken``."""

    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.base = ""
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1."""

        async def answer(request: web.Request) -> web.Response:
            if request.path in self.broken:
                return web.json_response({"status": "KO"}, status=503)
            return web.json_response({"status": "OK"})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()


class TimedSink(SmtpSink):
    """SmtpSink that notes when each message was accepted, by recipient and notice kind."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: dict[tuple[str, str], list[float]] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Take the time before parsing, so that parsing is not counted as delivery."""
        at = time.time()
        found = _KIND.search(envelope.original_content)
        kind = found.group(1).decode("ascii") if found else "?"
        for rcpt in envelope.rcpt_tos:
            self.accepted.setdefault((rcpt, kind), []).append(at)
        await self.record(envelope)
        return "250 2.0.0 OK: queued"


def write_config(folder: Path, checks: int, timing: Timing, base: str, smtp: int) -> Config:
    """checks.yaml and customers.csv in ``folder``, loaded."""
    parts = [
        CONFIG.format(
            checks=checks,
            state=folder / "state",
            interval=duration(timing.interval),
            timeout=duration(timing.timeout),
            retry=duration(timing.retry),
            failures=timing.failures,
            successes=timing.successes,
            stable=duration(timing.stable_for),
            smtp=smtp,
        )
    ]
    parts += [
        f"  - {{id: svc-{n:04d}, name: {{fr: Service {n}, en: Service {n}}}}}\n"
        for n in range(checks)
    ]
    parts.append("checks:\n")
    parts += [
        f"  - {{id: {check_id(n)}, service: svc-{n:04d}, type: http, url: {base}/api/{n:04d}}}\n"
        for n in range(checks)
    ]
    (folder / "checks.yaml").write_text("".join(parts), encoding="utf-8")
    rows = ["id,name,email,language,services"]
    rows += [
        f"c{n:04d},Customer {n},{address(n)},{'en' if n % 2 else 'fr'},svc-{n:04d}"
        for n in range(checks)
    ]
    (folder / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return load_config(folder / "checks.yaml")


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Poll ``condition`` every 10 ms; a clear error after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(0.01)


def p95(values: list[float]) -> float:
    """The 95th percentile, nearest rank: a value that was actually measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Outage:
    """The times of one outage, all UNIX seconds."""

    check: str
    start: float
    first_failure: float
    confirmed: float
    first_notice: float
    restore: float
    recovered: float
    resolution: float


async def one_outage(
    daemon: Daemon, target: Target, sink: TimedSink, n: int, timing: Timing, hold: float
) -> Outage:
    """Break check ``n``, await its first notice, restore ``hold`` s later, await the resolution."""
    engine, path, rcpt = daemon.engine, f"/api/{n:04d}", address(n)
    state = engine.states[check_id(n)]
    assert state.status is CheckStatus.UP, f"{check_id(n)} is {state.status} before its outage"
    patience = timing.interval + timing.retry * timing.failures + 30
    target.broken.add(path)
    start = time.time()
    await until(lambda: (rcpt, "first") in sink.accepted, patience, f"first notice to {rcpt}")
    incident = engine.covering(f"svc-{n:04d}")
    assert incident is not None
    # Restoring right after the notice would always land at the same point of the check's
    # grid (the notice follows its probes closely): an outage lasts a while longer.
    await asyncio.sleep(hold)
    target.broken.discard(path)
    restore = time.time()
    patience = timing.interval + timing.retry * timing.successes + timing.stable_for + 30
    await until(lambda: (rcpt, "resolved") in sink.accepted, patience, f"resolution to {rcpt}")
    closed = daemon.store.get_incident(incident.id)
    assert closed is not None and closed.recovered_at is not None
    return Outage(
        check=check_id(n),
        start=start,
        first_failure=incident.first_failure_at,
        confirmed=incident.opened_at,
        first_notice=sink.accepted[(rcpt, "first")][0],
        restore=restore,
        recovered=closed.recovered_at,
        resolution=sink.accepted[(rcpt, "resolved")][0],
    )


async def measure(checks: int, outages: int, timing: Timing) -> tuple[list[Outage], dict[str, Any]]:
    """Start target, SMTP server and daemon; run the outages one by one; stop everything."""
    target, sink = Target(), TimedSink()
    daemon: Daemon | None = None
    results: list[Outage] = []
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="forewarn-bench-outage-") as tmp:
        try:
            await target.start()
            await sink.start()
            config = write_config(Path(tmp), checks, timing, target.base, sink.port)
            starting = Daemon(config)
            await starting.start()
            daemon = starting  # stopped in finally only once fully started
            started = time.monotonic()
            extra["loop"] = type(asyncio.get_running_loop()).__module__.partition(".")[0]
            states = daemon.engine.states
            await until(
                lambda: all(s.status is CheckStatus.UP for s in states.values()),
                timing.interval * 2 + 30,
                "check all up",
            )
            print(
                f"  all {checks:,} checks up after {time.monotonic() - started:.1f} s "
                f"({extra['loop']} event loop); outages one at a time:",
                flush=True,
            )
            print(
                f"  {'#':>3} {'check':<9} {'(a) start→notice':>17} {'(b) probe→notice':>17} "
                f"{'confirm':>8} {'(c) restore→resolved':>21}",
                flush=True,
            )
            rng = random.Random(1)
            for k, n in enumerate(rng.sample(range(checks), outages), 1):
                hold = rng.uniform(0, timing.interval)
                o = await one_outage(daemon, target, sink, n, timing, hold)
                results.append(o)
                print(
                    f"  {k:>3} {o.check:<9} {o.first_notice - o.start:>15.2f} s "
                    f"{o.first_notice - o.first_failure:>15.2f} s "
                    f"{o.confirmed - o.first_failure:>6.2f} s "
                    f"{o.resolution - o.restore:>19.2f} s",
                    flush=True,
                )
            registry = daemon.metrics.registry
            lag_sum = registry.get_sample_value("forewarn_scheduler_lag_seconds_sum") or 0.0
            lag_count = registry.get_sample_value("forewarn_scheduler_lag_seconds_count") or 1.0
            extra["scheduler_lag_mean_ms"] = round(lag_sum / lag_count * 1000, 2)
            extra["probes_run"] = int(lag_count)
        finally:
            if daemon is not None:
                await daemon.stop()
            await sink.stop()
            await target.stop()
    kinds = sorted({kind for _, kind in sink.accepted})
    extra["emails_total"] = len(sink.messages)
    extra["email_kinds"] = ",".join(kinds)
    return results, extra


def summary(label: str, values: list[float]) -> dict[str, float]:
    """Print and return median, p95 and max of ``values``."""
    figures = {
        "median_s": round(statistics.median(values), 3),
        "p95_s": round(p95(values), 3),
        "max_s": round(max(values), 3),
    }
    print(
        f"  {label:<50} median {figures['median_s']:6.2f} s   p95 {figures['p95_s']:6.2f} s   "
        f"max {figures['max_s']:6.2f} s"
    )
    return figures


def main(quick: bool = False) -> dict[str, Any]:
    """Run the outages and return their figures."""
    checks, outages, timing = (200, 5, QUICK) if quick else (1_000, 20, FULL)
    configure_logging("warning")  # the daemon's info events would drown the table
    print(
        f"outage to inbox: {checks:,} http checks, {outages} outages; interval "
        f"{duration(timing.interval)}, retry_interval {duration(timing.retry)}, "
        f"failure_threshold {timing.failures}, success_threshold {timing.successes}, "
        f"stable_for {duration(timing.stable_for)}, customer_delay 0s, digest_window 0s"
    )
    results, extra = asyncio.run(measure(checks, outages, timing))
    print(f"  over {len(results)} outages:")
    a = summary(
        "(a) outage start → first notice accepted", [o.first_notice - o.start for o in results]
    )
    b = summary(
        "(b) first failed probe → first notice accepted",
        [o.first_notice - o.first_failure for o in results],
    )
    confirm = summary(
        "    of which first failed probe → confirmed",
        [o.confirmed - o.first_failure for o in results],
    )
    notice = summary(
        "    of which confirmed → notice accepted", [o.first_notice - o.confirmed for o in results]
    )
    c = summary("(c) restore → resolution accepted", [o.resolution - o.restore for o in results])
    seen = summary(
        "    of which restore → recovery confirmed", [o.recovered - o.restore for o in results]
    )
    tail = summary(
        f"    of which recovery → resolution (stable_for {duration(timing.stable_for)})",
        [o.resolution - o.recovered for o in results],
    )
    met = b["p95_s"] <= timing.goal_s
    print(
        f"  goal for (b): p95 ≤ retry_interval × failure_threshold + 1 s = "
        f"{timing.retry:g} × {timing.failures} + 1 = {timing.goal_s:g} s: "
        f"{'MET' if met else 'MISSED'} ({b['p95_s']:.2f} s)"
    )
    print(
        f"  emails accepted: {extra['emails_total']} ({extra['email_kinds']}; expected "
        f"{2 * outages}: one first notice and one resolution per outage); mean scheduler lag "
        f"{extra['scheduler_lag_mean_ms']} ms over {extra['probes_run']:,} probes"
    )
    return {
        "checks": checks,
        "outages": len(results),
        "interval_s": timing.interval,
        "retry_interval_s": timing.retry,
        "failure_threshold": timing.failures,
        "stable_for_s": timing.stable_for,
        "start_to_notice": a,
        "first_failure_to_notice": b,
        "first_failure_to_confirmed": confirm,
        "confirmed_to_notice": notice,
        "restore_to_resolution": c,
        "restore_to_recovered": seen,
        "recovered_to_resolution": tail,
        "goal_first_failure_to_notice_p95_s": timing.goal_s,
        "goal_met": met,
        **extra,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 checks, 5 outages, faster timing")
    main(quick=parser.parse_args().quick)
