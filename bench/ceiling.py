"""The ceiling: how many fresh-connection HTTP GETs one Python process can make, bare aiohttp.

Against our own nginx on 127.0.0.1 (``bench.nginx``), ``concurrency`` workers loop on GET
``/ok`` over one ``aiohttp.ClientSession`` whose connector closes every connection (as
forewarn's probes do: a fresh TCP connection per probe), with no scheduler, no metrics, no
storage. For each event loop (asyncio, and uvloop when importable) it reports probes/s and
probes per CPU-second of this process; nginx's own CPU is shown beside, to prove the target
was not the limit. One extra row runs forewarn's ``HttpProbe.run`` in the same bare loop: the
probe alone, without the daemon around it, to split the cost of the probe from the rest.

Run alone: ``python -m bench.ceiling [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.nginx import Nginx, ToolMissing, nginx_server
from bench.procstat import Sample, machine_busy_s, sample, sample_tree

WARMUP_S = 1.0  # sessions, first connections and imports are not what is measured


@dataclass
class Tally:
    """What the workers have done so far."""

    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Row:
    """One measured run."""

    client: str
    loop: str
    concurrency: int
    seconds: float
    probes: int
    failed: int
    cpu_s: float
    nginx_cpu_s: float
    machine_cpu_s: float  # every process on the machine, ours and nginx included
    errors: dict[str, int]

    @property
    def others_s(self) -> float:
        """CPU seconds spent by every other process on the machine during the run."""
        return max(0.0, self.machine_cpu_s - self.cpu_s - self.nginx_cpu_s)

    def figures(self) -> dict[str, Any]:
        """The JSON-able figures of this row."""
        return {
            "probes_per_s": round(self.probes / self.seconds, 1),
            "probes_per_cpu_s": round(self.probes / self.cpu_s, 1) if self.cpu_s else None,
            "cpu_ms_per_probe": round(self.cpu_s * 1000 / self.probes, 3) if self.probes else None,
            "cpu_cores_used": round(self.cpu_s / self.seconds, 2),
            "nginx_cpu_cores_used": round(self.nginx_cpu_s / self.seconds, 2),
            # Anything else running meanwhile (other jobs on a shared machine) skews probes/s.
            "other_cpu_cores_used": round(self.others_s / self.seconds, 2),
            "failed": self.failed,
            "errors": self.errors,
        }


Shot = Callable[[], Awaitable[bool]]
"""One probe: True when the target answered 200."""


async def drive(shot: Shot, concurrency: int, seconds: float, nginx_pid: int) -> Row:
    """Run ``concurrency`` looping workers; measure the ``seconds`` after the warm-up."""
    tally = Tally()
    stop = asyncio.Event()

    async def worker() -> None:
        """Probe back to back until told to stop; count every outcome."""
        while not stop.is_set():
            try:
                if await shot():
                    tally.ok += 1
                else:
                    tally.failed["status"] += 1
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                tally.failed[type(exc).__name__] += 1

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(WARMUP_S)
        busy0, nginx_before, before = machine_busy_s(), sample_tree(nginx_pid), sample()
        ok0, bad0 = tally.ok, tally.failed.total()
        await asyncio.sleep(seconds)
        after, nginx_after, busy1 = sample(), sample_tree(nginx_pid), machine_busy_s()
        probes, failed = tally.ok - ok0, tally.failed.total() - bad0
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
    return Row(
        client="",
        loop="",
        concurrency=concurrency,
        seconds=after.at - before.at,
        probes=probes + failed,
        failed=failed,
        cpu_s=_cpu(before, after),
        nginx_cpu_s=_cpu(nginx_before, nginx_after),
        machine_cpu_s=busy1 - busy0,
        errors=dict(tally.failed),
    )


def _cpu(before: Sample, after: Sample) -> float:
    """CPU seconds spent between two samples."""
    return after.cpu_s - before.cpu_s


async def bare_aiohttp(url: str, concurrency: int, seconds: float, nginx_pid: int) -> Row:
    """Plain ``session.get`` on a connector that closes each connection after its request."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def shot() -> bool:
            """One GET on a fresh connection."""
            async with session.get(url) as reply:
                await reply.read()
                return reply.status == 200

        return await drive(shot, concurrency, seconds, nginx_pid)


async def forewarn_probe(url: str, concurrency: int, seconds: float, nginx_pid: int) -> Row:
    """forewarn's ``HttpProbe.run`` on one check, looped; no scheduler, engine or store."""
    from monitor.probes.http import HttpCheck, HttpProbe

    check = HttpCheck.model_validate(
        {
            "id": "ceiling",
            "service": "bench",
            "type": "http",
            "url": url,
            "interval": 10.0,
            "timeout": 10.0,
            "retry_interval": 5.0,
            "failure_threshold": 3,
            "success_threshold": 2,
            "expect": {"status": [200]},
        }
    )
    probe = HttpProbe()
    try:

        async def shot() -> bool:
            """One run of the probe, judged as forewarn judges it."""
            result = await probe.run(check, time.time())
            return result.ok

        return await drive(shot, concurrency, seconds, nginx_pid)
    finally:
        await probe.close()


def loops() -> list[str]:
    """The event loops to measure: asyncio, and uvloop when it is installed."""
    return ["asyncio", *(["uvloop"] if importlib.util.find_spec("uvloop") else [])]


def run_on(loop: str, coro: Awaitable[Row]) -> Row:
    """Run ``coro`` to completion on a fresh event loop of the named kind."""
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


CLIENTS = {"aiohttp": bare_aiohttp, "forewarn HttpProbe": forewarn_probe}


def plan(quick: bool) -> list[tuple[str, str, int]]:
    """(client, loop, concurrency) of each run."""
    runs = [("aiohttp", loop, 100) for loop in loops()]
    runs += [("forewarn HttpProbe", loop, 100) for loop in loops()]
    if not quick:
        runs += [("aiohttp", loop, c) for c in (10, 500) for loop in loops()]
        runs += [("forewarn HttpProbe", "asyncio", c) for c in (10, 500)]
    return runs


def header() -> str:
    """The table's column titles."""
    return (
        f"  {'client':<20}{'loop':<9}{'conc':>5}{'probes/s':>11}{'probes/CPU-s':>14}"
        f"{'CPU ms/probe':>14}{'cores':>7}{'nginx cores':>13}{'others':>8}{'failed':>8}"
    )


def line(row: Row) -> str:
    """One table line."""
    f = row.figures()
    return (
        f"  {row.client:<20}{row.loop:<9}{row.concurrency:>5}{f['probes_per_s']:>11,.0f}"
        f"{f['probes_per_cpu_s'] or 0:>14,.0f}{f['cpu_ms_per_probe'] or 0:>14.3f}"
        f"{f['cpu_cores_used']:>7.2f}{f['nginx_cpu_cores_used']:>13.2f}"
        f"{f['other_cpu_cores_used']:>8.2f}{row.failed:>8}"
    )


def measure(server: Nginx, quick: bool) -> list[Row]:
    """Every run of the plan against ``server``, printed as it completes."""
    seconds = 8.0 if quick else 15.0
    rows = []
    print(f"fresh-connection GET {server.url}, {seconds:g} s each after {WARMUP_S:g} s warm-up")
    print(header(), flush=True)
    for client, loop, concurrency in plan(quick):
        coro = CLIENTS[client](server.url, concurrency, seconds, server.pid)
        row = run_on(loop, coro)
        row = Row(**{**row.__dict__, "client": client, "loop": loop})
        rows.append(row)
        print(line(row), flush=True)
    return rows


def main(quick: bool = False) -> dict[str, Any]:
    """Measure the ceiling; return the figures keyed by client, loop and concurrency."""
    try:
        with nginx_server() as server:
            rows = measure(server, quick)
    except ToolMissing as exc:
        print(f"skipped: {exc}")
        return {"skipped": str(exc)}
    figures: dict[str, Any] = {
        f"{r.client.replace(' ', '_')}.{r.loop}.c{r.concurrency}": r.figures() for r in rows
    }
    best = max((r for r in rows if r.client == "aiohttp"), key=lambda r: r.probes / r.seconds)
    figures["ceiling"] = {"loop": best.loop, "concurrency": best.concurrency, **best.figures()}
    print(
        f"ceiling: {best.probes / best.seconds:,.0f} probes/s "
        f"({best.loop}, concurrency {best.concurrency}), "
        f"{best.probes / best.cpu_s:,.0f} probes per CPU-second"
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute")
    main(parser.parse_args().quick)
