"""Overload: about three times the probe rate one event loop sustains, and no false outage.

The real ``monitor.daemon.Daemon`` is offered ``FACTOR`` × ``SUSTAINED_PER_S`` = 15,000
probes/s: 60,000 http checks of ``GET http://127.0.0.1:<port>/ok`` on our own nginx
(``bench.nginx``: a separate process, so the target stays healthy), a hundred per service,
``interval: 4s``, ``timeout: 2s``, ``retry_interval: 1s``, ``failure_threshold: 3`` (the
default). It runs in a child process (a fresh heap, as ``forewarn run`` has) on asyncio's own
loop (``--loop auto``: the loop ``forewarn run`` picks, uvloop when installed), with
production logging (JSON, level info) written to a file, and ``/metrics`` scraped every 15 s
from another thread, as Prometheus would (rendering 18,000 checks' series blocks the loop for
seconds: the longest stalls of the run). The first round (until every check has a first
result, each one a transition) is overload too and counts for false outages; then a window is
measured (quick: 20 s, full: 60 s). Reported:

* ``false_down`` (transitions to down, whole run) and ``incidents_opened``: must be 0, the
  target never failed;
* ``results_per_s``: results started in the window, read back from the results table
  (probed, judged and stored); ``inconclusive`` (whole run) and ``inconclusive_per_s``
  (window): timeouts set aside because the daemon itself was stalled
  (``forewarn_probe_inconclusive_total``); ``failed_by_reason``: results judged failed
  anyway (whole run: the guard's misses, since the target never fails);
* ``lateness_p50/p99/max_ms``: every value the scheduler observed into
  ``forewarn_scheduler_lag_seconds`` in the window (exact, not bucket bounds);
* ``loop_lag_p99/max_ms``: how late the lag monitor's 50 ms timer fired in the window;
  ``worst_stall_ms``, the longest stall seen over the run; GC pauses apart;
* ``cpu_cores_used`` by the daemon's process, ``health_at_end`` (``/healthz`` status), and
  the scrapes: how many, the slowest, the size of one.

``--control`` (and the full run) repeats the run with the guard switched off
(``scheduler.lag = None``), to show what it prevents: there, the same stalls show up as
``timeout``/``connect_timeout`` failures of a healthy target.

Run alone: ``python -m bench.overload [--quick] [--control] [--rate 15000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.nginx import ToolMissing, nginx_server
from bench.procstat import sample
from bench.throughput import Sink, write_config

# What one loop sustains here, measured with this very section (``--rate``): before issue 21,
# offered 3,000/s it saturated one core at 1,300-1,800 results/s. Since (own HTTP/1.1, checks in
# 10 ms slots) one process takes 0.16 ms a probe, about 5,000/s a core; offered 15,000/s, the
# daemon and its two workers served 8,270 results/s (2026-12-05).
SUSTAINED_PER_S = 5_000
FACTOR = 3
INTERVAL_S = 4.0
TIMEOUT_S = 2.0
RATE_PER_S = SUSTAINED_PER_S * FACTOR
CHECKS_PER_SERVICE = 100
WARMUP_MAX_S = 120.0  # the first round: every check's first result is a transition
SCRAPE_EVERY_S = 15.0  # a Prometheus scrape of /metrics, as in production
QUICK_WINDOW_S = 20.0
FULL_WINDOW_S = 60.0
RESULT_MARK = "OVERLOAD-RESULT "


class Recording:
    """Stands in for one of the daemon's histograms: keeps each value, then passes it on."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.values: list[float] = []
        self.keeping = False

    def observe(self, value: float) -> None:
        """Keep ``value`` while the window is open; observe it in the real histogram."""
        if self.keeping:
            self.values.append(value)
        self.histogram.observe(value)


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def counter_total(counter: Any) -> float:
    """The sum over labels of one counter's ``_total`` samples."""
    # One metric's samples only: collecting the whole registry of 18,000 checks would itself
    # block the loop for seconds, the very stall this section is about.
    return sum(
        s.value for metric in counter.collect() for s in metric.samples if s.name.endswith("_total")
    )


def scrape_once(port: int) -> tuple[float, int]:
    """GET /metrics from another thread (as Prometheus would, from outside): seconds, bytes."""
    import urllib.request

    started, size = time.perf_counter(), 0
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=120) as reply:
        while chunk := reply.read(1 << 20):
            size += len(chunk)
    return time.perf_counter() - started, size


async def scraping(port: int, seen: list[tuple[float, int]]) -> None:
    """Scrape every SCRAPE_EVERY_S until cancelled, noting each scrape's seconds and bytes."""
    while True:
        await asyncio.sleep(SCRAPE_EVERY_S)
        seen.append(await asyncio.to_thread(scrape_once, port))


async def first_round(daemon: Any) -> float:
    """Wait until every check has a status (or WARMUP_MAX_S); the seconds it took."""
    from monitor.domain.detector import CheckStatus

    started = time.monotonic()
    states = daemon.engine.states
    while time.monotonic() - started < WARMUP_MAX_S:
        if all(s.status is not CheckStatus.UNKNOWN for s in states.values()):
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def run(url: str, window_s: float, guarded: bool, rate: float) -> dict[str, Any]:
    """The real Daemon offered ``rate`` probes/s: a first round, then ``window_s`` measured."""
    import structlog

    from monitor.config.load import load_config
    from monitor.daemon import Daemon
    from monitor.runtime.lag import loop_name
    from monitor.runtime.logs import configure_logging

    sink = Sink()
    configure_logging("info", json=True)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as name:
        tmp = Path(name)
        checks = round(rate * INTERVAL_S)
        daemon = Daemon(
            load_config(
                write_config(
                    tmp,
                    checks,
                    url,
                    interval=INTERVAL_S,
                    timeout=TIMEOUT_S,
                    retry=1.0,
                    per_service=CHECKS_PER_SERVICE,
                )
            )
        )
        with open(tmp / "daemon.log", "w", encoding="utf-8") as log_file:  # noqa: ASYNC230
            sink.target = log_file
            await daemon.start()
            if not guarded:
                daemon.scheduler.lag = None  # the control: every timeout is believed
            scrapes: list[tuple[float, int]] = []
            scraper = asyncio.create_task(scraping(daemon.port, scrapes))
            lateness = daemon.metrics.scheduler_lag = Recording(daemon.metrics.scheduler_lag)
            loop_lag = daemon.metrics.event_loop_lag = Recording(daemon.metrics.event_loop_lag)
            try:
                warmup_s = await first_round(daemon)
                lateness.keeping = loop_lag.keeping = True
                cpu0, t0 = sample(), time.time()
                inconclusive0 = counter_total(daemon.metrics.probe_inconclusive)
                await asyncio.sleep(window_s)
                cpu1, t1 = sample(), time.time()
                inconclusive1 = counter_total(daemon.metrics.probe_inconclusive)
                lateness.keeping = loop_lag.keeping = False
                health = daemon.health()
            finally:
                scraper.cancel()
                await asyncio.gather(scraper, return_exceptions=True)
                await daemon.stop()
                sink.target = None
        worst_stall = daemon.lag.worst
        stalls = list(daemon.lag.stalls)
        gc_pauses = [s.length for s in stalls if s.cause == "gc"]
        loop_stalls = [s.length for s in stalls if s.cause == "loop"]
        db = sqlite3.connect(f"file:{tmp / 'state' / 'forewarn.db'}?mode=ro", uri=True)
        try:
            results = db.execute(
                "SELECT count(*) FROM results WHERE at >= ? AND at < ?", (t0, t1)
            ).fetchone()[0]
            failed = dict(
                db.execute(
                    "SELECT coalesce(reason, '?'), count(*) FROM results WHERE ok = 0 "
                    "GROUP BY reason"
                ).fetchall()
            )
            false_down = db.execute(
                "SELECT count(*) FROM transitions WHERE new_status = 'down'"
            ).fetchone()[0]
            incidents = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
        finally:
            db.close()
    seconds = t1 - t0
    ms = 1000.0
    return {
        "guarded": guarded,
        "loop": loop_name(),
        "checks": checks,
        "offered_per_s": checks / INTERVAL_S,
        "first_round_s": round(warmup_s, 1),
        "window_s": round(seconds, 1),
        "results_per_s": round(results / seconds, 1),
        "inconclusive": int(inconclusive1),
        "inconclusive_per_s": round((inconclusive1 - inconclusive0) / seconds, 1),
        "false_down": false_down,
        "incidents_opened": incidents,
        "failed_by_reason": failed,
        "lateness_p50_ms": round(quantile(lateness.values, 0.5) * ms, 1),
        "lateness_p99_ms": round(quantile(lateness.values, 0.99) * ms, 1),
        "lateness_max_ms": round(quantile(lateness.values, 1.0) * ms, 1),
        "loop_lag_p99_ms": round(quantile(loop_lag.values, 0.99) * ms, 1),
        "loop_lag_max_ms": round(quantile(loop_lag.values, 1.0) * ms, 1),
        "worst_stall_ms": round(worst_stall * ms, 1),
        "gc_pause_max_ms": round(max(gc_pauses, default=0.0) * ms, 1),
        "gc_pauses_over_50ms": sum(p >= 0.05 for p in gc_pauses),
        "loop_stalls_over_250ms": sum(p >= 0.25 for p in loop_stalls),
        "scrapes": len(scrapes),
        "scrape_max_s": round(max((s for s, _ in scrapes), default=0.0), 2),
        "scrape_mb": round(max((b for _, b in scrapes), default=0) / 2**20, 1),
        "health_at_end": health["status"],
        "cpu_cores_used": round((cpu1.cpu_s - cpu0.cpu_s) / seconds, 2),
    }


def run_child(url: str, window_s: float, guarded: bool, rate: float, loop: str) -> Any:
    """One run in a fresh interpreter (a fresh heap, as ``forewarn run`` has); its figures."""
    argv = [sys.executable, "-m", "bench.overload", "--child", "--url", url]
    argv += ["--window", str(window_s), "--rate", str(rate), "--loop", loop]
    argv += [] if guarded else ["--unguarded"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(  # noqa: S603 - this very module, arguments built here
        argv, cwd=root, stdout=subprocess.PIPE, text=True
    )
    figures = None
    try:
        assert proc.stdout is not None
        for text in proc.stdout:
            if text.startswith(RESULT_MARK):
                figures = json.loads(text[len(RESULT_MARK) :])
            else:
                print(text, end="", flush=True)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()  # Ctrl-C or an error here: never leave a daemon probing behind
            proc.wait()
    if proc.returncode != 0 or figures is None:
        raise RuntimeError(f"overload run failed (exit {proc.returncode})")
    return figures


def show(figures: dict[str, Any]) -> None:
    """One run as a few readable lines."""
    f = figures
    print(
        f"  {'guarded' if f['guarded'] else 'control (guard off)'} on {f['loop']}: "
        f"{f['checks']:,} checks, "
        f"{f['offered_per_s']:,.0f}/s offered, {f['results_per_s']:,.0f} results/s, "
        f"{f['inconclusive']:,} inconclusive ({f['inconclusive_per_s']:,.0f}/s), "
        f"false down {f['false_down']}, incidents {f['incidents_opened']}, "
        f"first round {f['first_round_s']} s\n"
        f"    lateness p50/p99/max {f['lateness_p50_ms']:,.0f}/{f['lateness_p99_ms']:,.0f}/"
        f"{f['lateness_max_ms']:,.0f} ms, loop lag p99/max {f['loop_lag_p99_ms']:,.0f}/"
        f"{f['loop_lag_max_ms']:,.0f} ms, worst stall {f['worst_stall_ms']:,.0f} ms, "
        f"{f['cpu_cores_used']} cores, failed {f['failed_by_reason']}, "
        f"health {f['health_at_end']}\n"
        f"    {f['scrapes']} /metrics scrapes of {f['scrape_mb']} MB, slowest "
        f"{f['scrape_max_s']} s; GC pause max {f['gc_pause_max_ms']:,.0f} ms",
        flush=True,
    )


def main(
    quick: bool = False,
    control: bool | None = None,
    rate: float = RATE_PER_S,
    loop: str = "asyncio",
) -> dict[str, Any]:
    """Overload the real daemon (and, in the full run, a control without the guard)."""
    window = QUICK_WINDOW_S if quick else FULL_WINDOW_S
    control = not quick if control is None else control
    figures: dict[str, Any] = {}
    try:
        with nginx_server() as server:
            print(
                f"{rate * INTERVAL_S:,.0f} http checks on {server.url} every {INTERVAL_S:g} s "
                f"(timeout {TIMEOUT_S:g} s): {rate:,.0f} probes/s offered; "
                f"window {window:g} s after every check's first result",
                flush=True,
            )
            figures["guarded"] = run_child(server.url, window, True, rate, loop)
            show(figures["guarded"])
            if control:
                figures["control"] = run_child(server.url, window, False, rate, loop)
                show(figures["control"])
    except ToolMissing as exc:
        print(f"skipped: {exc}")
        return {"skipped": str(exc)}
    if figures["guarded"]["false_down"]:
        print("  FAILED: overload turned into false outages", flush=True)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s window, no control run")
    parser.add_argument("--control", action="store_true", help="also run without the guard")
    parser.add_argument("--rate", type=float, default=RATE_PER_S, help="probes/s offered")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--window", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--unguarded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--loop",
        choices=["asyncio", "auto"],
        default="asyncio",
        help="auto: the loop forewarn run picks (uvloop when installed)",
    )
    arguments = parser.parse_args()
    if arguments.child:
        from monitor.runtime.lag import loop_factory

        # The loop ``forewarn run`` would use (uvloop with the ``fast`` extra), or asyncio's.
        factory = loop_factory() if arguments.loop == "auto" else None
        with asyncio.Runner(loop_factory=factory) as runner:
            work = run(arguments.url, arguments.window, not arguments.unguarded, arguments.rate)
            result = runner.run(work)
        print(RESULT_MARK + json.dumps(result), flush=True)
    else:
        main(arguments.quick, True if arguments.control else None, arguments.rate, arguments.loop)
