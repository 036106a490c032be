"""Benchmark: the public status site (page, JSON, feed, badge) over 90 days of real history.

For each size (10 and 100 services, two HTTP checks each) a checks.yaml is written to a
temporary directory and loaded with ``load_config``; a real ``SqliteStore`` beside it is seeded
with 90 days of results through ``write_results`` (their day aggregates are what the board
reads), 3 open incidents and 10 resolved ones, all with timelines. No daemon runs and no check
is ever probed (their URLs point at 127.0.0.1:9). Then it measures:

* the public snapshot built uncached: ``StatusBoard.snapshot()`` after ``invalidate()`` (store
  reads and ``build``), ``build()`` alone on gathered inputs, and ``day_tallies`` alone;
* each public handler called in-process on a cached snapshot: the server's CPU per request,
  without HTTP (documents are rendered once per snapshot, so this is mostly the ETag's hash);
* the daemon's app (``build_app`` and the status, public API and feed routes) served on
  127.0.0.1 and loaded over HTTP by keep-alive aiohttp workers: requests/s and p50/p99 latency.
  The client runs in the server's process and event loop, so both share one CPU core;
* ``wrk`` against ``/``, if it is installed.

Run from the repository root: ``python bench/bench_status_page.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

# Runnable without installing the package: the repository root holds monitor/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config.load import Config, load_config
from monitor.domain.availability import day_bounds, last_days
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    ServiceView,
)
from monitor.probes.base import ProbeResult
from monitor.runtime.metrics import Metrics
from monitor.status.board import Inputs, build
from monitor.status.source import StatusBoard
from monitor.store.sqlite import SqliteStore
from monitor.web.app import build_app
from monitor.web.badge import badge_handler
from monitor.web.caching import BOARD_KEY
from monitor.web.feed import add_feed_routes, atom_feed
from monitor.web.public_api import add_public_api_routes, status, status_history
from monitor.web.status import add_status_routes, status_page

ZONE = ZoneInfo("Europe/Paris")
DAY = 86400.0
HOUR = 3600.0
PUBLIC_URL = "https://status.example.net"

CONFIG_HEAD = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:0", public_url: "{public}",
         timezone: Europe/Paris}}
defaults: {{interval: 30s, timeout: 5s, retry_interval: 5s,
           failure_threshold: 3, success_threshold: 2}}
"""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Site:
    """A loaded config, its seeded store, and what the engine would hold in memory."""

    config: Config
    store: SqliteStore
    open: list[Incident]
    views: dict[str, ServiceView]
    results: int
    seed_s: float

    def board(self) -> StatusBoard:
        """A StatusBoard over this site, on the real clock (so its 2 s cache expires)."""
        return StatusBoard(
            config=lambda: self.config,
            views=lambda: self.views,
            open_incidents=lambda: self.open,
            windows=lambda: ([], {}),
            store=self.store,
            clock=time.time,
        )


@dataclass
class Load:
    """What the HTTP workers saw on one path."""

    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    size: int = 0


def service_id(n: int) -> str:
    """The id of the ``n``-th service."""
    return f"svc-{n:03d}"


def write_config(directory: Path, services: int) -> Config:
    """Write a checks.yaml of ``services`` services with two HTTP checks each, and load it."""
    lines = [CONFIG_HEAD.format(state=directory / "state", public=PUBLIC_URL), "services:"]
    for n in range(services):
        names = f"{{fr: 'Service client n°{n}', en: 'Customer service no. {n}'}}"
        lines.append(f"  - {{id: {service_id(n)}, name: {names}}}")
    lines.append("checks:")
    for n in range(services):
        for part in ("api", "web"):
            check = f"{service_id(n)}-{part}"
            lines.append(
                f"  - {{id: {check}, service: {service_id(n)}, type: http, "
                f'url: "http://127.0.0.1:9/{check}"}}'
            )
    path = directory / "checks.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


def results(config: Config, now: float, every: float, size: int) -> Iterator[list[ProbeResult]]:
    """Every check's results over the 90 days shown, one per ``every`` seconds, in batches."""
    start, _ = day_bounds(last_days(now, ZONE)[0], ZONE)
    checks = [c.id for c in config.checks]
    batch: list[ProbeResult] = []
    tick = 0
    at = start
    while at < now - every:
        for index, check in enumerate(checks):
            # About one failure in a hundred, in a different slot for each check.
            ok = (tick + index) % 101 != 0
            batch.append(ProbeResult(check, at + index * every / len(checks), ok, duration_s=0.08))
            if len(batch) >= size:
                yield batch
                batch = []
        tick += 1
        at += every
    if batch:
        yield batch


def incidents(config: Config, now: float) -> tuple[list[Incident], list[IncidentUpdate]]:
    """3 open incidents and 10 resolved ones (told, so public), with their timelines."""
    ids = [s.id for s in config.services]
    made: list[Incident] = []
    updates: list[IncidentUpdate] = []
    for k in range(3):
        service = ids[k * len(ids) // 3]
        began = now - (k + 1) * 40 * 60
        incident = Incident(
            id=f"{service}-open-{k}",
            service_id=service,
            status=IncidentStatus.IDENTIFIED if k else IncidentStatus.INVESTIGATING,
            opened_at=began + 60,
            first_failure_at=began,
            sequence=2,
            customers_told_at=began + 300,
            next_update_at=now + 1800,
            reason="http_status",
            detail="GET http://127.0.0.1:9/: connection refused",
            services=(service,),
            announced=(service,),
            check_id=f"{service}-api",
            message="Our provider is restarting its API.\nNext update within 30 minutes.",
        )
        made.append(incident)
        updates += [
            IncidentUpdate(incident.id, began + 60, "investigating", ChangeKind.OPENED, ""),
            IncidentUpdate(incident.id, began + 300, "investigating", ChangeKind.ANNOUNCED, ""),
            IncidentUpdate(
                incident.id, began + 900, "identified", ChangeKind.IDENTIFIED, incident.message
            ),
            IncidentUpdate(incident.id, began + 1800, "identified", ChangeKind.UPDATE, ""),
        ]
    for k in range(10):
        service = ids[(k * 7) % len(ids)]
        began = now - (1 + 6 * k) * DAY - 5 * HOUR
        recovered = began + 2 * HOUR + k * 600
        incident = Incident(
            id=f"{service}-past-{k}",
            service_id=service,
            status=IncidentStatus.RESOLVED,
            opened_at=began + 60,
            first_failure_at=began,
            sequence=3,
            customers_told_at=began + 300,
            recovered_at=recovered,
            resolved_at=recovered + 900,
            reason="tls_expired",
            detail="certificate expired",
            services=(service,),
            announced=(service,),
            check_id=f"{service}-web",
            message="A certificate expired; it has been renewed.",
            postmortem="A certificate expired.\n\nWe now renew certificates 14 days ahead."
            if k % 2 == 0
            else "",
        )
        made.append(incident)
        updates += [
            IncidentUpdate(incident.id, began + 60, "investigating", ChangeKind.OPENED, ""),
            IncidentUpdate(incident.id, began + 300, "investigating", ChangeKind.ANNOUNCED, ""),
            IncidentUpdate(
                incident.id, began + 1200, "identified", ChangeKind.IDENTIFIED, incident.message
            ),
            IncidentUpdate(incident.id, recovered, "monitoring", ChangeKind.RECOVERING, ""),
            IncidentUpdate(incident.id, recovered + 900, "resolved", ChangeKind.RESOLVED, ""),
        ]
    return made, updates


def seed(directory: Path, services: int, every: float, batch: int) -> Site:
    """Write and load the config, then fill a real store with 90 days of history."""
    config = write_config(directory, services)
    store = SqliteStore.open(directory / "state", ZONE)
    now = time.time()
    started = time.perf_counter()
    count = 0
    for chunk in results(config, now, every, batch):
        store.write_results(chunk)
        count += len(chunk)
    made, updates = incidents(config, now)
    store.commit(incidents=made, updates=updates)
    seeded = time.perf_counter() - started
    open_ = [i for i in made if i.resolved_at is None]
    views = {s.id: ServiceView(s.id, CheckStatus.UP, now - DAY) for s in config.services}
    for incident in open_:
        views[incident.service_id] = ServiceView(
            incident.service_id, CheckStatus.DOWN, incident.first_failure_at
        )
    return Site(config, store, open_, views, count, seeded)


def repeat(run: Callable[[], object], budget_s: float, least: int = 5) -> float:
    """Median ms of ``run``, called for about ``budget_s`` and at least ``least`` times."""
    run()  # warm: templates compiled, pages cached by SQLite
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < least or time.perf_counter() < deadline:
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def arepeat(run: Callable[[], Awaitable[object]], budget_s: float, least: int = 5) -> float:
    """Median milliseconds of an awaited ``run``, as ``repeat``."""
    await run()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < least or time.perf_counter() < deadline:
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def snapshot_costs(site: Site, budget_s: float) -> dict[str, float]:
    """Milliseconds for an uncached snapshot, for ``build`` alone, and for ``day_tallies``."""
    board = site.board()

    def uncached() -> None:
        board.invalidate()
        board.snapshot()

    now = time.time()
    first_day = last_days(now, ZONE)[0]
    since, _ = day_bounds(first_day, ZONE)
    past = site.store.resolved_since(since)
    inputs = Inputs(
        config=site.config,
        views=site.views,
        open=site.open,
        past=past,
        timelines={i.id: site.store.timeline(i.id) for i in (*site.open, *past)},
        windows=[],
        progress={},
        days=site.store.day_tallies(first_day),
        measured_at=site.store.last_result_at(),
    )
    return {
        "snapshot": repeat(uncached, budget_s),
        "build": repeat(lambda: build(inputs, now), budget_s),
        "day_tallies": repeat(lambda: site.store.day_tallies(first_day), budget_s),
        "tallies": float(len(inputs.days)),
    }


def serve_app(board: StatusBoard) -> web.Application:
    """The daemon's app with every public route, as ``Daemon`` wires it."""
    app = build_app(Metrics(), lambda: {"status": "ok"})
    app[BOARD_KEY] = board
    add_status_routes(app)
    add_feed_routes(app)
    add_public_api_routes(app)
    return app


async def handler_costs(
    app: web.Application, paths: Mapping[str, tuple[Handler, dict[str, str]]], budget_s: float
) -> dict[str, tuple[float, int]]:
    """Per path: median ms of its handler called in-process on a cached snapshot, and body size."""
    costs: dict[str, tuple[float, int]] = {}
    for path, (handler, match_info) in paths.items():
        request = make_mocked_request("GET", path, app=app, match_info=match_info)

        async def call(handler: Handler = handler, request: web.Request = request) -> None:
            await handler(request)

        response = await handler(request)
        size = len(response.body) if isinstance(response, web.Response) and response.body else 0
        costs[path] = (await arepeat(call, budget_s), size)
    return costs


async def load(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    workers: int,
    seconds: float,
) -> Load:
    """Keep ``workers`` requests in flight against ``url`` for ``seconds``."""
    seen = Load()
    for _ in range(workers):  # warm: open the keep-alive connections
        async with session.get(url, headers=headers) as response:
            seen.size = len(await response.read())

    async def worker(deadline: float) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
            seen.latencies.append(time.perf_counter() - started)
            seen.statuses[response.status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(started + seconds) for _ in range(workers)))
    seen.elapsed = time.perf_counter() - started
    return seen


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def run_wrk(url: str, seconds: float) -> str:
    """``wrk``'s requests/s against ``url``, or why there is none."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return "wrk not installed: skipped"
    command = [wrk, "-t2", "-c8", f"-d{seconds:g}s", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    found = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if found is None:
        return f"wrk gave no figure: {done.stderr.strip() or done.stdout.strip()}"
    return f"wrk -t2 -c8 -d{seconds:g}s /   {float(found.group(1)):>8,.0f} req/s"


async def measure(site: Site, args: argparse.Namespace) -> tuple[float, float]:
    """Print every figure for one seeded site; return ms of one render of ``/`` and snapshot."""
    costs = snapshot_costs(site, args.budget)
    print(
        f"  snapshot, uncached (store reads + build)   {costs['snapshot']:8.2f} ms\n"
        f"    build() alone, on gathered inputs        {costs['build']:8.2f} ms\n"
        f"    day_tallies alone                        {costs['day_tallies']:8.2f} ms  "
        f"({costs['tallies']:,.0f} tallies)"
    )

    board = site.board()
    app = serve_app(board)
    badge = f"/badge/{site.config.services[0].id}.svg"
    handlers: dict[str, tuple[Handler, dict[str, str]]] = {
        "/": (status_page, {}),
        "/api/v1/status": (status, {}),
        "/api/v1/status/history": (status_history, {}),
        "/feed.atom": (atom_feed, {}),
        badge: (badge_handler, {"service": site.config.services[0].id}),
    }
    board.snapshot()
    inproc = await handler_costs(app, handlers, args.budget)
    print("  handler in-process, snapshot cached (server CPU per request, no HTTP):")
    for path, (ms, size) in inproc.items():
        print(f"    {path:<30} {ms:8.3f} ms  {1000 / ms:>9,.0f} /s max  {size:>9,} B")

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site_ = web.TCPSite(runner, "127.0.0.1", 0)
    await site_.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        connector = aiohttp.TCPConnector(limit=args.workers)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"{base}/") as first:
                etag = first.headers["ETag"]
            targets: list[tuple[str, str, dict[str, str]]] = [
                ("/", "/", {}),
                ("/api/v1/status", "/api/v1/status", {}),
                ("/feed.atom", "/feed.atom", {}),
                (badge, badge, {}),
                ("/ If-None-Match (304)", "/", {"If-None-Match": etag}),
            ]
            print(
                f"  HTTP on 127.0.0.1, {args.workers} keep-alive aiohttp workers, "
                f"{args.seconds:g} s per path (client shares the server's CPU core):"
            )
            print(
                f"    {'path':<30} {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  "
                f"{'body B':>9}  statuses"
            )
            for label, path, headers in targets:
                seen = await load(session, base + path, headers, args.workers, args.seconds)
                rate = len(seen.latencies) / seen.elapsed
                p50 = percentile(seen.latencies, 0.50) * 1000
                p99 = percentile(seen.latencies, 0.99) * 1000
                codes = " ".join(f"{c}×{n}" for c, n in sorted(seen.statuses.items()))
                print(
                    f"    {label:<30} {rate:>8,.0f}  {p50:7.2f}  {p99:7.2f}  "
                    f"{seen.size:>9,}  {codes}"
                )
        wrk = await asyncio.to_thread(run_wrk, f"{base}/", args.seconds)
        print(f"  {wrk}")
    finally:
        await runner.cleanup()
    return inproc["/"][0], costs["snapshot"]


def main() -> None:
    """Seed each size, then time snapshots, handlers and HTTP serving; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[10, 100])
    parser.add_argument(
        "--every", type=float, default=1800.0, help="seconds between a check's seeded results"
    )
    parser.add_argument("--batch", type=int, default=5000, help="results per write_results")
    parser.add_argument("--workers", type=int, default=8, help="concurrent HTTP requests")
    parser.add_argument("--seconds", type=float, default=3.0, help="HTTP load per path")
    parser.add_argument("--budget", type=float, default=0.4, help="seconds per in-process timing")
    args = parser.parse_args()
    print(
        f"forewarn status site, {ZONE.key}, Python {sys.version.split()[0]}, "
        f"aiohttp {aiohttp.__version__}; 2 HTTP checks per service, "
        f"one result per check every {args.every / 60:g} min over 90 days"
    )
    renders: dict[int, tuple[float, float]] = {}
    total = time.perf_counter()
    for services in args.services:
        with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
            site = seed(Path(tmp), services, args.every, args.batch)
            print(
                f"\nN = {services} services, {len(site.config.checks)} checks: seeded "
                f"{site.results:,} results + 13 incidents (3 open) in {site.seed_s:.1f} s"
            )
            try:
                renders[services] = asyncio.run(measure(site, args))
            finally:
                site.store.close()
    print()
    for services, (render_ms, snap_ms) in renders.items():
        print(
            f"N = {services}: serving / takes {render_ms:.2f} ms a request (rendered once per "
            f"snapshot; 304s included: the ETag hashes the body); the snapshot "
            f"({snap_ms:.2f} ms) is rebuilt at most once per 2 s"
        )
    print(f"whole run: {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
