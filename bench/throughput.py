"""forewarn's real pipeline under load: N http checks against nginx, the real Daemon, measured.

For each N a checks.yaml is written to a temporary directory: N ``http`` checks of
``GET http://127.0.0.1:<port>/ok`` (our own nginx, ``bench.nginx``) expecting 200, ten checks
per service, every check at ``interval: 10s`` (``timeout: 5s``), so the offered rate is
N / 10 probes per second. The real ``monitor.daemon.Daemon`` runs on it in a child process of
its own (so RSS and fds are that N's alone), on the event loop ``forewarn run`` picks (uvloop
when installed; ``--loop asyncio`` to compare), state in the temporary directory, notices
transport ``file``, listening on
127.0.0.1:0, logs configured as in production (JSON, level info) into a file. The window
starts after a warm-up of at least one interval (every check has run once) and until the
scheduler has settled (its lag histogram's p99 ≤ 250 ms over 2 s, twice in a row; at most
90 s): starting N checks costs more than running them, and ``warmup_s`` says how long it took.
Then:

* ``probes_per_s``: results whose probe started inside the window, read back from the
  results table the daemon wrote (so: probed, judged, folded in and persisted);
* ``cpu_ms_per_probe``: CPU seconds (user + sys, all threads) of the daemon's process and its
  probe workers (``daemon.probe_workers``; ``--workers``) over the window, divided by those
  results. nginx's CPU is reported apart and not included;
* lateness, two ways. ``lateness_*_ms`` are exact: every value the daemon fed its
  ``forewarn_scheduler_lag_seconds`` histogram in the window (its own scheduler's and its
  workers'), i.e. how long after its due time each probe took a concurrency slot.
  ``lag_hist_*_ms`` are read from that histogram (window delta): bucket upper bounds;
* ``slots_skipped``: grid slots a check never ran in because its run was too late (runs of a
  check more than 1.5 intervals apart);
* ``failed``: failed results against a healthy target, by reason: false outages in the making;
* ``pss_mb`` (the table's memory: shared pages divided between the processes), ``rss_mb``
  (summed, shared pages counted in each), ``open_fds`` at the end of the window; then one
  ``/metrics`` scrape, timed and weighed after the window. Nothing scrapes during the window
  unless ``--scrape-every S`` asks for it (as a Prometheus server would).

The full run measures N = 625, 1,000, 1,250, 2,500, 5,000, 10,000 (the scaling curve: CPU per
probe and lateness as N doubles); ``--quick`` measures N = 1,000 only.

Run alone: ``python -m bench.throughput [--quick]``; ``--checks 5000 --profile`` adds a
pyinstrument profile of the window (figures taken under a profiler are not the benchmark's).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench.nginx import Nginx, ToolMissing, die_with_parent, nginx_server, sigterm_as_exit
from bench.procstat import (
    Sample,
    descendants,
    machine_busy_s,
    proportional_mb,
    sample_tree,
)

INTERVAL_S = 10.0
TIMEOUT_S = 5.0
CHECKS_PER_SERVICE = 10
QUICK_CHECKS = (1_000,)
FULL_CHECKS = (625, 1_000, 1_250, 2_500, 5_000, 10_000)  # one process: the scaling curve
WORKER_CHECKS = (2_500, 5_000, 10_000)  # with probe workers (auto)
QUICK_HTTPS, FULL_HTTPS = (1_000,), (3_000,)
QUICK_WINDOW_S = 20.0
FULL_WINDOW_S = 30.0
WARMUP_S = INTERVAL_S + 2.0  # at least: every check has run once, first runs spread
SETTLE_CAP_S = 90.0  # the window starts then, settled or not (the figures will show it)
SETTLED_LAG_S = 0.25  # the scheduler's lag p99 over 2 s at most this, twice in a row
RESULT_MARK = "THROUGHPUT-RESULT "

CONFIG_HEAD = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", timezone: Europe/Paris,
         probe_workers: {workers}}}
defaults: {{interval: {interval}s, timeout: {timeout}s, retry_interval: {retry}s,
           failure_threshold: 3, success_threshold: 2}}
notices: {{transport: file}}
"""


def offered_per_s(checks: int) -> float:
    """The probe rate N checks at the benchmark's interval ask for."""
    return checks / INTERVAL_S


def write_config(
    directory: Path,
    checks: int,
    url: str,
    *,
    interval: float = INTERVAL_S,
    timeout: float = TIMEOUT_S,
    retry: float = 5.0,
    per_service: int = CHECKS_PER_SERVICE,
    workers: str = "auto",
    ca_file: Path | None = None,
) -> Path:
    """A checks.yaml of ``checks`` http checks on ``url``, ``per_service`` per service."""
    head = CONFIG_HEAD.format(
        state=directory / "state", interval=interval, timeout=timeout, retry=retry, workers=workers
    )
    lines = [head, "services:"]
    services = math.ceil(checks / per_service)
    lines += [f"  - {{id: s{n:05d}, name: 'Service {n}'}}" for n in range(services)]
    lines.append("checks:")
    trust = f', ca_file: "{ca_file}"' if ca_file else ""
    lines += [
        f"  - {{id: c{n:05d}, service: s{n // per_service:05d}, type: http, "
        f'url: "{url}"{trust}, expect: {{status: [200]}}}}'
        for n in range(checks)
    ]
    path = directory / "checks.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Sink:
    """Where structlog writes during a run: a file while it is open, nowhere after."""

    def __init__(self) -> None:
        self.target: TextIO | None = None
        self.lines = 0

    def write(self, text: str) -> int:
        """Write to the current file, if any."""
        self.lines += text.count("\n")
        return self.target.write(text) if self.target is not None else len(text)

    def flush(self) -> None:
        """Flush the current file, if any."""
        if self.target is not None:
            self.target.flush()


def quiet_production_logging(sink: Sink) -> None:
    """forewarn's production logging (JSON, level info), written to ``sink``."""
    import structlog

    from monitor.runtime.logs import configure_logging

    configure_logging("info", json=True)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))  # type: ignore[arg-type]


def histogram(metric: Any) -> dict[float, float]:
    """Cumulative bucket counts of an unlabelled prometheus_client Histogram, by upper bound."""
    return {
        float(s.labels["le"]): s.value
        for s in metric.collect()[0].samples
        if s.name.endswith("_bucket")
    }


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` of the observations in between."""
    bounds = sorted(after)
    total = after[math.inf] - before.get(math.inf, 0.0)
    if total <= 0:
        return math.nan
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return math.inf


def in_ms(seconds: float, digits: int = 2) -> float | None:
    """Seconds as rounded milliseconds; None for NaN (nothing measured) or infinity (above the
    histogram's top bucket), which JSON cannot hold."""
    return round(seconds * 1000, digits) if math.isfinite(seconds) else None


def quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank); NaN when there are none."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Lateness:
    """Every lateness the daemon records, its own scheduler's and its workers', timestamped.

    These are the exact values behind ``forewarn_scheduler_lag_seconds``: how long after its
    due time each probe took a concurrency slot (a retry while confirming is due
    ``retry_interval`` after the previous run, so it counts too).
    """

    def __init__(self, metric: Any) -> None:
        self.seen: list[tuple[float, float]] = []  # (wall-clock time, seconds late)
        record = metric.observe

        def observe(seconds: float) -> None:
            self.seen.append((time.time(), seconds))
            record(seconds)

        metric.observe = observe

    def between(self, start: float, end: float) -> list[float]:
        """The sorted lateness values recorded in ``[start, end)``."""
        return sorted(late for at, late in self.seen if start <= at < end)


def skipped_slots(rows: list[tuple[str, float, int, float]], start: float, end: float) -> int:
    """Grid slots passed over in ``[start, end)``: a check's runs more than 1.5 intervals apart.

    ``rows`` are (check_id, at, ok, duration_s) ordered by check then time.
    """
    skipped = 0
    previous: dict[str, float] = {}
    for check_id, at, _, _ in rows:
        before = previous.get(check_id)
        previous[check_id] = at
        if before is not None and start <= at < end and at - before > 1.5 * INTERVAL_S:
            skipped += round((at - before) / INTERVAL_S) - 1
    return skipped


def by_slice(seen: list[tuple[float, float]], start: float, width: float) -> list[float | None]:
    """p99 lateness (ms) of each ``width``-second slice from ``start``: the run's shape."""
    slices: dict[int, list[float]] = {}
    for at, late in seen:
        slices.setdefault(int((at - start) // width), []).append(late)
    return [
        in_ms(quantile(sorted(slices.get(k, [])), 0.99), 1)
        for k in range(max(slices, default=-1) + 1)
    ]


def counter_total(metric: Any) -> float:
    """The sum over all labels of a prometheus_client Counter."""
    return float(sum(s.value for s in metric.collect()[0].samples if s.name.endswith("_total")))


def optional(metrics: Any) -> dict[str, Any]:
    """Readings of metrics only some versions of the daemon have (None where absent)."""
    inconclusive = getattr(metrics, "probe_inconclusive", None)
    loop_lag = getattr(metrics, "event_loop_lag", None)
    return {
        "inconclusive": None if inconclusive is None else counter_total(inconclusive),
        "loop_lag": None if loop_lag is None else histogram(loop_lag),
    }


def optional_figures(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Window deltas of ``optional`` readings, for the metrics the daemon has."""
    figures: dict[str, Any] = {}
    if after["inconclusive"] is not None:
        # Set aside by the daemon (a timeout while it stalled): neither judged nor stored.
        figures["inconclusive"] = int(after["inconclusive"] - before["inconclusive"])
    if after["loop_lag"] is not None:
        lag0, lag1 = before["loop_lag"], after["loop_lag"]
        figures["loop_lag_hist_p99_ms_at_most"] = in_ms(bucket_quantile(lag0, lag1, 0.99), 0)
    return figures


async def settle(metric: Any, minimum_s: float) -> tuple[float, bool]:
    """Wait ``minimum_s``, then until the lag histogram is calm; seconds waited, and whether.

    Starting N checks at once costs more than running them (first results are all
    transitions), so the measured window must not begin before that has passed.
    """
    started = time.monotonic()
    await asyncio.sleep(minimum_s)
    calm, before = 0, histogram(metric)
    while time.monotonic() - started < SETTLE_CAP_S:
        await asyncio.sleep(2.0)
        after = histogram(metric)
        calm = calm + 1 if bucket_quantile(before, after, 0.99) <= SETTLED_LAG_S else 0
        before = after
        if calm >= 2:
            return time.monotonic() - started, True
    return time.monotonic() - started, False


async def scrape(port: int) -> tuple[float, int]:
    """Seconds and bytes of one GET /metrics from the daemon."""
    import aiohttp

    started = time.perf_counter()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as reply,
    ):
        body = await reply.read()
    return time.perf_counter() - started, len(body)


@dataclass(frozen=True)
class Options:
    """How each size is run."""

    window_s: float = FULL_WINDOW_S
    warmup_s: float = WARMUP_S  # at least; then until the scheduler has settled
    loop: str = "auto"  # auto: what ``forewarn run`` picks (uvloop when installed)
    scrape_every_s: float = 0.0  # GET /metrics this often in the window, as Prometheus; 0: never
    profile: bool = False
    workers: str = "auto"  # daemon.probe_workers
    https: bool = False  # probe nginx over TLS, a full handshake each time

    def argv(self) -> list[str]:
        """These options as command-line arguments of ``python -m bench.throughput``."""
        argv = ["--window", str(self.window_s), "--warmup", str(self.warmup_s)]
        argv += ["--loop", self.loop, "--scrape-every", str(self.scrape_every_s)]
        argv += ["--workers", self.workers] + (["--https"] if self.https else [])
        return argv + (["--profile"] if self.profile else [])


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to run the daemon on; ``auto`` asks the daemon, as ``forewarn run`` does."""
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if loop == "asyncio":
        return None
    try:
        from monitor.runtime.lag import loop_factory as production
    except ImportError:  # a daemon from before the choice existed ran on asyncio's loop
        return None
    return production()


async def scraping(port: int, every_s: float, took: list[float]) -> None:
    """GET /metrics every ``every_s`` seconds, as a Prometheus server would; note durations."""
    while True:
        await asyncio.sleep(every_s)
        seconds, _ = await scrape(port)
        took.append(seconds)


async def point(
    checks: int, url: str, nginx_pid: int, options: Options, ca_file: Path | None = None
) -> dict[str, Any]:
    """Run the real Daemon on ``checks`` checks and measure one window; the figures."""
    from monitor.config.load import load_config
    from monitor.daemon import Daemon

    loop_name = type(asyncio.get_running_loop()).__module__.partition(".")[0]  # uvloop|asyncio
    sink = Sink()
    quiet_production_logging(sink)
    idle = sample_tree(os.getpid())
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as name:
        tmp = Path(name)
        started = time.perf_counter()
        path = write_config(tmp, checks, url, workers=options.workers, ca_file=ca_file)
        config = load_config(path)
        load_s = time.perf_counter() - started
        # Opened before the daemon starts: nothing else is running on the loop yet.
        with open(tmp / "daemon.log", "w", encoding="utf-8") as log_file:  # noqa: ASYNC230
            sink.target = log_file
            daemon = Daemon(config)
            lateness = Lateness(daemon.metrics.scheduler_lag)
            cpu_start = own()
            started, started_at = time.perf_counter(), time.time()
            await daemon.start()
            start_s = time.perf_counter() - started
            first: dict[str, float] = {}
            watching = asyncio.create_task(first_round(daemon, started, cpu_start, first))
            try:
                waited_s, settled = await settle(daemon.metrics.scheduler_lag, options.warmup_s)
                watching.cancel()
                lag0, extra0 = histogram(daemon.metrics.scheduler_lag), optional(daemon.metrics)
                busy0, nginx0, cpu0 = machine_busy_s(), sample_tree(nginx_pid), own()
                t0 = time.time()
                profiler, scrapes = None, list[float]()
                scraper = None
                if options.scrape_every_s:
                    every = options.scrape_every_s
                    scraper = asyncio.create_task(scraping(daemon.port, every, scrapes))
                if options.profile:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="disabled")  # the whole thread, every task
                    profiler.start()
                await asyncio.sleep(options.window_s)
                t1 = time.time()
                cpu1, nginx1, busy1 = own(), sample_tree(nginx_pid), machine_busy_s()
                pss = pss_mb()
                lag1, extra1 = histogram(daemon.metrics.scheduler_lag), optional(daemon.metrics)
                if profiler is not None:
                    profiler.stop()
                if scraper is not None:
                    scraper.cancel()
                    await asyncio.gather(scraper, return_exceptions=True)
                scrape_s, scrape_bytes = await scrape(daemon.port)
            finally:
                await daemon.stop()
                sink.target = None
        log_lines = sink.lines
        db = sqlite3.connect(f"file:{tmp / 'state' / 'forewarn.db'}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT check_id, at, ok, duration_s FROM results ORDER BY check_id, at"
            ).fetchall()
            reasons = Counter(
                dict(
                    db.execute(
                        "SELECT coalesce(reason, '?'), count(*) FROM results "
                        "WHERE ok = 0 AND at >= ? AND at < ? GROUP BY reason",
                        (t0, t1),
                    ).fetchall()
                )
            )
        finally:
            db.close()
    if profiler is not None:
        # Wall-clock samples of the loop's thread: epoll.poll is the idle time. Under uvloop
        # the loop itself is C, so its work and its idling both show as Runner.run.
        print(profiler.output_text(unicode=True, color=False, show_all=False), flush=True)
    late = lateness.between(t0, t1)
    seconds = t1 - t0
    probes = sum(1 for row in rows if t0 <= row[1] < t1)
    cpu_s = cpu1.cpu_s - cpu0.cpu_s
    nginx_s = nginx1.cpu_s - nginx0.cpu_s
    ms = 1000.0
    return {
        "checks": checks,
        "loop": loop_name,
        "interval_s": INTERVAL_S,
        "window_s": round(seconds, 2),
        "warmup_s": round(waited_s, 1),  # from the daemon's start to the window's
        "settled_before_window": settled,
        "offered_probes_per_s": offered_per_s(checks),
        "probes_per_s": round(probes / seconds, 1),
        "probes": probes,
        "cpu_ms_per_probe": round(cpu_s * ms / probes, 3) if probes else None,
        "cpu_cores_used": round(cpu_s / seconds, 3),
        "cpu_user_share": round((cpu1.user_s - cpu0.user_s) / cpu_s, 2) if cpu_s else None,
        "nginx_cpu_cores_used": round(nginx_s / seconds, 3),
        "other_cpu_cores_used": round(max(0.0, busy1 - busy0 - cpu_s - nginx_s) / seconds, 2),
        "lateness_p50_ms": in_ms(quantile(late, 0.50)),
        "lateness_p99_ms": in_ms(quantile(late, 0.99)),
        "lateness_max_ms": in_ms(quantile(late, 1.0)),
        # None: above the top bucket (5 s).
        "lag_hist_p50_ms_at_most": in_ms(bucket_quantile(lag0, lag1, 0.50), 0),
        "lag_hist_p99_ms_at_most": in_ms(bucket_quantile(lag0, lag1, 0.99), 0),
        "slots_skipped": skipped_slots(rows, t0, t1),
        **optional_figures(extra0, extra1),
        # From the daemon's start to its stop, warm-up included: has it settled?
        "lateness_p99_ms_per_10s_since_start": by_slice(
            [seen for seen in lateness.seen if seen[0] < t1], started_at, 10.0
        ),
        "failed": sum(reasons.values()),
        "failed_by_reason": dict(reasons),
        "failed_since_start": sum(1 for row in rows if not row[2]),
        "probe_workers": len(daemon.workers.workers),
        "rss_mb": round(cpu1.rss_mb, 1),  # summed over the processes: shared pages count twice
        "pss_mb": round(pss, 1),  # shared pages split between them: the fair total
        "rss_mb_before_config": round(idle.rss_mb, 1),
        "open_fds": cpu1.fds,
        "threads": cpu1.threads,
        "config_load_s": round(load_s, 2),
        "daemon_start_s": round(start_s, 2),
        # From the start of daemon.start() until every check is up (None: not before the
        # window), and the CPU the daemon and its workers spent meanwhile, per check.
        "first_round_all_up_s": first.get("all_up_s"),
        "first_round_cpu_ms_per_check": first.get("cpu_ms_per_check"),
        "metrics_scrape_s": round(scrape_s, 3),
        "metrics_scrape_mb": round(scrape_bytes / 2**20, 2),
        "scrapes_in_window": len(scrapes),  # --scrape-every; none by default
        "log_lines": log_lines,
    }


async def first_round(daemon: Any, started: float, cpu0: Sample, out: dict[str, float]) -> None:
    """Note when every check is first up, and the CPU spent until then (per check)."""
    from monitor.domain.detector import CheckStatus

    states = daemon.engine.states
    # Polled, not awaited: the engine has no event for it, and this runs only until all are up.
    while not states or any(s.status is not CheckStatus.UP for s in states.values()):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    out["all_up_s"] = round(time.perf_counter() - started, 2)
    out["cpu_ms_per_check"] = round((own().cpu_s - cpu0.cpu_s) * 1000 / len(states), 3)


def own() -> Sample:
    """This process (the daemon) and its probe workers, read together."""
    return sample_tree(os.getpid())


def pss_mb() -> float:
    """Proportional set size of this process and its workers, in MB."""
    return sum(proportional_mb(pid) for pid in (os.getpid(), *descendants(os.getpid())))


def header() -> str:
    """The table's column titles."""
    return (
        f"  {'loop':<10}{'checks':>7}{'offered/s':>10}{'probes/s':>10}{'CPU ms/probe':>13}"
        f"{'cores':>7}"
        f"{'late p50':>10}{'p99':>9}{'max ms':>9}{'hist p99≤':>10}{'skipped':>8}"
        f"{'failed':>7}{'PSS MB':>8}{'fds':>6}{'nginx':>7}{'others':>7}{'warm-up s':>10}"
        f"{'all up s':>9}"
    )


def workers(p: dict[str, Any]) -> str:
    """``+2w`` when probing ran in two worker processes; nothing in-process."""
    return f"+{p['probe_workers']}w" if p.get("probe_workers") else ""


def cell(value: float | None, width: int, spec: str = ".1f", none: str = "-") -> str:
    """A right-aligned table cell; ``none`` where there is no figure."""
    return f"{none:>{width}}" if value is None else f"{value:>{width}{spec}}"


def line(p: dict[str, Any]) -> str:
    """One table line."""
    return (
        f"  {p['loop'] + workers(p):<10}{p['checks']:>7,}{p['offered_probes_per_s']:>10,.1f}"
        f"{p['probes_per_s']:>10,.1f}"
        f"{cell(p['cpu_ms_per_probe'], 13, '.3f')}{p['cpu_cores_used']:>7.2f}"
        f"{cell(p['lateness_p50_ms'], 10)}{cell(p['lateness_p99_ms'], 9)}"
        f"{cell(p['lateness_max_ms'], 9)}{cell(p['lag_hist_p99_ms_at_most'], 10, 'g', '>5000')}"
        f"{p['slots_skipped']:>8}{p['failed']:>7}"
        f"{p.get('pss_mb', p['rss_mb']):>8.0f}{p['open_fds']:>6}{p['nginx_cpu_cores_used']:>7.2f}"
        f"{p['other_cpu_cores_used']:>7.2f}"
        f"{p['warmup_s']:>9.0f}{'' if p['settled_before_window'] else '!'}"
        f"{cell(p.get('first_round_all_up_s'), 9)}"
    )


def run_child(checks: int, server: Nginx, options: Options) -> Any:
    """One point in a fresh interpreter, so its RSS and fds are its own; its figures."""
    url = server.tls_url if options.https else server.url
    argv = [sys.executable, "-m", "bench.throughput", "--point", str(checks), "--url", url]
    argv += ["--nginx-pid", str(server.pid), "--ca-file", str(server.ca_file), *options.argv()]
    root = Path(__file__).resolve().parents[1]  # ``-m`` from here finds bench/ and monitor/
    proc = subprocess.Popen(  # noqa: S603 - this very module, arguments built here
        argv, cwd=root, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent
    )
    figures = None
    try:
        assert proc.stdout is not None
        for text in proc.stdout:
            if text.startswith(RESULT_MARK):
                figures = json.loads(text[len(RESULT_MARK) :])
            else:
                print(text, end="", flush=True)  # the profile, or a traceback's context
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()  # Ctrl-C or an error here: never leave a daemon probing behind
            proc.wait()
    if proc.returncode != 0 or figures is None:
        raise RuntimeError(f"throughput point N={checks} failed (exit {proc.returncode})")
    return figures


def measure(sizes: tuple[int, ...], options: Options) -> dict[str, Any]:
    """Every size against one nginx, printed as it completes; the figures by size."""
    points: dict[str, Any] = {}
    with nginx_server() as server:
        print(
            f"{len(sizes)} run(s): N http checks on "
            f"{server.tls_url if options.https else server.url} every {INTERVAL_S:g} s "
            f"(timeout {TIMEOUT_S:g} s); window {options.window_s:g} s after a warm-up of at "
            f"least {options.warmup_s:g} s, until the scheduler's lag p99 ≤ "
            f"{SETTLED_LAG_S * 1000:g} ms (! = not settled after {SETTLE_CAP_S:g} s); "
            f"event loop: {options.loop}"
            + (
                f"; /metrics scraped every {options.scrape_every_s:g} s"
                if options.scrape_every_s
                else ""
            )
        )
        print(header(), flush=True)
        for checks in sizes:
            figures = run_child(checks, server, options)
            points[f"n{checks}"] = figures
            print(line(figures), flush=True)
    return points


def main(quick: bool = False) -> dict[str, Any]:
    """Measure the real daemon: in one process as N doubles, then with probe workers, then
    over HTTPS; return the figures keyed ``n<checks>``, ``n<checks>_workers``, ``https_n<checks>``.
    """
    sizes, window = (QUICK_CHECKS, QUICK_WINDOW_S) if quick else (FULL_CHECKS, FULL_WINDOW_S)
    single = Options(window_s=window, workers="0")
    spread = Options(window_s=window)  # auto: one worker a core from 200 probes/s
    try:
        points = measure(sizes, single)
        if not quick:
            shared = measure(WORKER_CHECKS, spread)
            points.update({f"{key}_workers": value for key, value in shared.items()})
        tls = measure(QUICK_HTTPS if quick else FULL_HTTPS, dataclasses.replace(spread, https=True))
        points.update({f"https_{key}": value for key, value in tls.items()})
    except ToolMissing as exc:
        print(f"skipped: {exc}")
        return {"skipped": str(exc)}
    print(
        "  lateness: exact, every value of forewarn_scheduler_lag_seconds in the window; "
        "hist p99≤: that histogram's bucket bound; PSS, cores: the daemon and its workers"
    )
    figures: dict[str, Any] = {}
    curve = [points[f"n{n}"] for n in sizes]
    if len(curve) > 1:
        figures["fit"] = cost_fit(curve)
        fit = figures["fit"]
        print(
            f"  least-squares fit of cores on probes/s (one process): "
            f"{fit['marginal_cpu_ms_per_probe']} ms per extra probe, "
            f"{fit['fixed_cpu_cores']} cores at no probes"
        )
    return {**figures, **points}


def cost_fit(points: list[dict[str, Any]]) -> dict[str, float]:
    """Cores used against probes/s, fitted to a line: the marginal and the fixed cost."""
    xs = [p["probes_per_s"] for p in points]
    ys = [p["cpu_cores_used"] for p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return {
        "marginal_cpu_ms_per_probe": round(slope * 1000, 3),
        "fixed_cpu_cores": round(mean_y - slope * mean_x, 3),
    }


def _point_main(args: argparse.Namespace) -> None:
    """The child side of ``run_child``: one point, its figures on a marked last line."""
    options = Options(
        args.window, args.warmup, args.loop, args.scrape_every, args.profile, args.workers
    )
    options = dataclasses.replace(options, https=args.https)
    ca_file = args.ca_file if args.https else None
    # The parent's death (PDEATHSIG) still stops the daemon cleanly.
    with sigterm_as_exit(), asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        figures = runner.run(point(args.point, args.url, args.nginx_pid, options, ca_file))
    print(RESULT_MARK + json.dumps(figures), flush=True)


def _cli() -> None:
    """``python -m bench.throughput``: the section, chosen sizes, a profile, or one child."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only, under a minute")
    parser.add_argument("--checks", type=int, nargs="+", help="these sizes instead")
    parser.add_argument("--profile", action="store_true", help="pyinstrument over the window")
    parser.add_argument("--window", type=float, help="seconds measured per size")
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="at least, before it")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument(
        "--loop", choices=("auto", "asyncio", "uvloop"), default="auto", help="auto: as forewarn"
    )
    parser.add_argument("--scrape-every", type=float, default=0.0, help="GET /metrics, seconds")
    parser.add_argument("--workers", default="auto", help="daemon.probe_workers (auto, 0, 1, …)")
    parser.add_argument("--https", action="store_true", help="over TLS, a full handshake each")
    parser.add_argument("--point", type=int, help=argparse.SUPPRESS)  # internal: one child
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--nginx-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        _point_main(args)
        return
    custom = args.checks or args.profile or args.window or args.scrape_every
    custom = custom or args.loop != "auto" or args.workers != "auto" or args.https
    if custom:
        window = args.window or (QUICK_WINDOW_S if args.quick else FULL_WINDOW_S)
        options = Options(
            window, args.warmup, args.loop, args.scrape_every, args.profile, args.workers
        )
        options = dataclasses.replace(options, https=args.https)
        sizes = tuple(args.checks or (QUICK_CHECKS if args.quick else FULL_CHECKS))
        try:
            result = measure(sizes, options)
        except ToolMissing as missing:
            print(f"skipped: {missing}")
            result = {"skipped": str(missing)}
    else:
        result = main(args.quick)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    _cli()
