"""The peer: Prometheus' blackbox_exporter probing the same nginx, at forewarn's rate and flat out.

Debian's ``prometheus-blackbox-exporter`` runs as our child, in its own process group, with an
``http_2xx`` module (GET, 200 expected, IPv4, 5 s timeout) configured in a temporary directory
and listening on a free 127.0.0.1 port. A load generator in this process (aiohttp, keep-alive
connections to the exporter) calls ``/probe?module=http_2xx&target=<nginx /ok>``, as Prometheus
would scrape it, and counts the answers that say ``probe_success 1``. Like forewarn, the
exporter opens a fresh connection to the target for each probe.

Two kinds of run:

* paced at the offered rates of the throughput section (N checks every 10 s: 100/s in
  ``--quick``; 100, 500 and 1,000/s in the full run), open loop: a probe is started at its
  time whatever the previous ones do (at most ``CONCURRENCY`` at once);
* flat out: ``CONCURRENCY`` requests always in flight, for the exporter's ceiling.

The exporter's CPU seconds (user + sys, all threads, from /proc) over the measured window give
``cpu_ms_per_probe``; the load generator's own CPU is reported apart and **not** counted, nor
is nginx's. Run alone: ``python -m bench.peer [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.nginx import (
    Nginx,
    ToolMissing,
    free_port,
    nginx_server,
    require,
    sigterm_as_exit,
    start_group,
    stop_group,
    wait_listening,
)
from bench.procstat import machine_busy_s, sample, sample_tree
from bench.throughput import (
    FULL_CHECKS,
    INTERVAL_S,
    QUICK_CHECKS,
    cell,
    cost_fit,
    in_ms,
    offered_per_s,
    quantile,
)

EXPORTER = "/usr/bin/prometheus-blackbox-exporter"
MODULES = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      method: GET
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""
CONCURRENCY = 256  # in flight at most; a paced run needing more falls behind (probes/s shows it)
WARMUP_S = 2.0
FULL_RATE_CHECKS = tuple(n for n in FULL_CHECKS if n in (1_000, 5_000, 10_000))


@dataclass
class Tally:
    """Answers seen by the load generator."""

    ok: int = 0
    failed: int = 0  # the exporter said probe_success 0, or answered other than 200
    errors: int = 0  # the exporter could not be reached or timed out
    latencies: list[float] = field(default_factory=list)  # seconds, request to last byte

    def done(self) -> int:
        """Every request that finished, however it ended."""
        return self.ok + self.failed + self.errors


@dataclass
class Exporter:
    """A running blackbox_exporter: its pid and the /probe URL."""

    pid: int
    probe_url: str


class Load:
    """Sends /probe requests to the exporter over keep-alive connections and tallies them."""

    def __init__(self, session: aiohttp.ClientSession, exporter: Exporter, target: str) -> None:
        self.session = session
        self.exporter = exporter
        self.params = {"module": "http_2xx", "target": target}
        self.tally = Tally()
        self.slots = asyncio.Semaphore(CONCURRENCY)

    async def one(self) -> None:
        """One probe through the exporter; releases its slot when done."""
        started = time.perf_counter()
        try:
            async with self.session.get(self.exporter.probe_url, params=self.params) as reply:
                body = await reply.read()
            if reply.status == 200 and b"\nprobe_success 1" in body:
                self.tally.ok += 1
            else:
                self.tally.failed += 1
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.tally.errors += 1
        finally:
            self.tally.latencies.append(time.perf_counter() - started)
            self.slots.release()

    async def paced(self, rate: float, stop: asyncio.Event) -> None:
        """Start probes at ``rate`` per second on a fixed schedule until ``stop``."""
        tasks: set[asyncio.Task[None]] = set()
        start, sent = time.monotonic(), 0
        try:
            while not stop.is_set():
                due = math.floor((time.monotonic() - start) * rate) + 1 - sent
                for _ in range(due):  # every probe whose time has come, late ones included
                    await self.slots.acquire()
                    task = asyncio.create_task(self.one())
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    sent += 1
                await asyncio.sleep(min(0.01, 1 / rate))
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def flat_out(self, stop: asyncio.Event) -> None:
        """Keep ``CONCURRENCY`` probes in flight until ``stop``."""

        async def worker() -> None:
            """One probe after another until told to stop."""
            while not stop.is_set():
                await self.slots.acquire()
                await self.one()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def drive(
    exporter: Exporter, target: str, nginx_pid: int, rate: float | None, seconds: float
) -> dict[str, Any]:
    """One run (paced at ``rate``, or flat out when None); the exporter's figures."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)  # keep-alive to the exporter
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load = Load(session, exporter, target)
        stop = asyncio.Event()
        runner = asyncio.create_task(load.paced(rate, stop) if rate else load.flat_out(stop))
        try:
            await asyncio.sleep(WARMUP_S)
            busy0, nginx0, ours0 = machine_busy_s(), sample_tree(nginx_pid), sample()
            peer0 = sample_tree(exporter.pid)
            done0, ok0, lat0 = load.tally.done(), load.tally.ok, len(load.tally.latencies)
            await asyncio.sleep(seconds)
            peer1 = sample_tree(exporter.pid)
            ours1, nginx1, busy1 = sample(), sample_tree(nginx_pid), machine_busy_s()
            done1, ok1 = load.tally.done(), load.tally.ok
            latencies = sorted(load.tally.latencies[lat0:])
        finally:
            stop.set()
            await runner
    elapsed = peer1.at - peer0.at
    probes = done1 - done0
    peer_s, ours_s, nginx_s = (
        peer1.cpu_s - peer0.cpu_s,
        ours1.cpu_s - ours0.cpu_s,
        nginx1.cpu_s - nginx0.cpu_s,
    )
    ms = 1000.0
    return {
        "offered_probes_per_s": rate if rate else None,
        "probes_per_s": round(probes / elapsed, 1),
        "ok_probes_per_s": round((ok1 - ok0) / elapsed, 1),
        "failed": probes - (ok1 - ok0),
        "cpu_ms_per_probe": round(peer_s * ms / probes, 3) if probes else None,
        "cpu_cores_used": round(peer_s / elapsed, 3),
        "rss_mb": round(peer1.rss_mb, 1),
        "threads": peer1.threads,
        "open_fds": peer1.fds,
        "probe_latency_p50_ms": in_ms(quantile(latencies, 0.5)),
        "probe_latency_p99_ms": in_ms(quantile(latencies, 0.99)),
        "loadgen_cpu_cores_used": round(ours_s / elapsed, 3),  # not counted in the figures
        "nginx_cpu_cores_used": round(nginx_s / elapsed, 3),
        "other_cpu_cores_used": round(
            max(0.0, busy1 - busy0 - peer_s - ours_s - nginx_s) / elapsed, 2
        ),
        "window_s": round(elapsed, 2),
    }


def header() -> str:
    """The table's column titles."""
    return (
        f"  {'run':<14}{'offered/s':>10}{'probes/s':>10}{'CPU ms/probe':>13}{'cores':>7}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'failed':>7}{'RSS MB':>8}{'thr':>5}{'loadgen':>9}"
        f"{'nginx':>7}{'others':>7}"
    )


def line(name: str, f: dict[str, Any]) -> str:
    """One table line."""
    offered = f"{f['offered_probes_per_s']:,.0f}" if f["offered_probes_per_s"] else "max"
    return (
        f"  {name:<14}{offered:>10}{f['probes_per_s']:>10,.1f}"
        f"{cell(f['cpu_ms_per_probe'], 13, '.3f')}{f['cpu_cores_used']:>7.2f}"
        f"{cell(f['probe_latency_p50_ms'], 8)}{cell(f['probe_latency_p99_ms'], 8)}{f['failed']:>7}"
        f"{f['rss_mb']:>8.0f}{f['threads']:>5}{f['loadgen_cpu_cores_used']:>9.2f}"
        f"{f['nginx_cpu_cores_used']:>7.2f}{f['other_cpu_cores_used']:>7.2f}"
    )


def measure(server: Nginx, quick: bool) -> dict[str, Any]:
    """Start the exporter, run every rate and the flat-out run against ``server``."""
    binary = require(EXPORTER, "prometheus-blackbox-exporter")
    seconds = 15.0 if quick else 30.0
    checks = QUICK_CHECKS if quick else FULL_RATE_CHECKS
    runs: list[tuple[str, float | None]] = [(f"n{n}", offered_per_s(n)) for n in checks]
    runs.append(("max", None))
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-blackbox-") as name:
        tmp = Path(name)
        (tmp / "blackbox.yml").write_text(MODULES, encoding="utf-8")
        port = free_port()
        log = tmp / "exporter.log"
        argv = [binary, f"--config.file={tmp / 'blackbox.yml'}"]
        argv += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        proc = start_group(argv, log)
        try:
            wait_listening(proc, port, log)
            exporter = Exporter(pid=proc.pid, probe_url=f"http://127.0.0.1:{port}/probe")
            print(
                f"blackbox_exporter pid {proc.pid} on 127.0.0.1:{port}, module http_2xx → "
                f"{server.url}; {seconds:g} s per run after {WARMUP_S:g} s, "
                f"at most {CONCURRENCY} in flight"
            )
            print(header(), flush=True)
            for label, rate in runs:
                run = asyncio.run(drive(exporter, server.url, server.pid, rate, seconds))
                figures[label] = run
                print(line(label, run), flush=True)
        finally:
            stop_group(proc)
    return figures


def main(quick: bool = False) -> dict[str, Any]:
    """Measure blackbox_exporter at forewarn's offered rates and flat out; the figures."""
    try:
        with sigterm_as_exit(), nginx_server() as server:
            figures = measure(server, quick)
    except ToolMissing as exc:
        print(f"skipped: {exc}")
        return {"skipped": str(exc)}
    print(
        f"  paced runs match the throughput section's offered rates (N checks every "
        f"{INTERVAL_S:g} s); CPU is the exporter's only (loadgen and nginx shown apart)"
    )
    paced = [f for f in figures.values() if f["offered_probes_per_s"]]
    fit = {"fit": cost_fit(paced)} if len(paced) > 1 else {}
    if fit:
        print(
            f"  least-squares fit of the exporter's cores on probes/s (paced runs): "
            f"{fit['fit']['marginal_cpu_ms_per_probe']} ms per extra probe, "
            f"{fit['fit']['fixed_cpu_cores']} cores at no probes"
        )
    return {"peer": "prometheus-blackbox-exporter", **fit, **figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute")
    main(parser.parse_args().quick)
