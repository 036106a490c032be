"""Benchmark: results written with their aggregates, then pruned in chunks to a 7-day retention.

Run from the repository root: ``python bench/bench_retention.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# Runnable without installing the package: the repository root holds monitor/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.domain.availability import day_of
from monitor.probes.base import ProbeResult
from monitor.store.retention import prune_in_chunks
from monitor.store.sqlite import SqliteStore

ZONE = ZoneInfo("Europe/Paris")
START = 1_795_000_000.0  # November 2026
DAY = 86400.0


def batches(results: int, checks: int, days: int, size: int) -> Iterator[list[ProbeResult]]:
    """``results`` results spread evenly over ``checks`` checks and ``days`` days, in batches."""
    step = days * DAY * checks / results  # each check's interval
    batch: list[ProbeResult] = []
    for n in range(results):
        tick, check = divmod(n, checks)
        at = START + tick * step + check * step / checks  # checks spread over the interval
        batch.append(ProbeResult(f"check-{check:03d}", at, ok=n % 97 != 0, duration_s=0.05))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def raw_only(path: Path, results: int, checks: int, days: int, size: int) -> float:
    """Seconds to insert the same results without aggregates: the baseline."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE results (check_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, "
        "ok BOOLEAN NOT NULL, degraded BOOLEAN NOT NULL, reason TEXT, "
        "duration_s DOUBLE PRECISION NOT NULL)"
    )
    conn.execute("CREATE INDEX results_check_at ON results (check_id, at)")
    conn.execute("CREATE INDEX results_at ON results (at)")
    started = time.perf_counter()
    for batch in batches(results, checks, days, size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)",
            [(r.check_id, r.at, r.ok, r.degraded, r.reason, r.duration_s) for r in batch],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    """Fill a temporary store, time the writes, prune to the retention, time the prune."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=100)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000, help="results per write_results")
    parser.add_argument("--retention-days", type=float, default=7.0)
    parser.add_argument("--chunk", type=int, default=2000)
    args = parser.parse_args()
    n, checks, days = args.results, args.checks, args.days
    print(f"{n:,} results, {checks} checks, {days} days, batches of {args.batch}, {ZONE.key}")

    with tempfile.TemporaryDirectory() as tmp:
        base = raw_only(Path(tmp) / "raw.db", n, checks, days, args.batch)
        print(f"  raw insert only (baseline)      {base:7.2f} s  {n / base:>10,.0f} results/s")

        store = SqliteStore.open(Path(tmp) / "state", ZONE)
        started = time.perf_counter()
        for batch in batches(n, checks, days, args.batch):
            store.write_results(batch)
        wrote = time.perf_counter() - started
        print(f"  write_results with aggregates   {wrote:7.2f} s  {n / wrote:>10,.0f} results/s")

        # The daemon flushes every 0.25 s: a handful of results per transaction.
        small = list(batches(2000, checks, 1, 10))
        started = time.perf_counter()
        for batch in small:
            store.write_results([ProbeResult(r.check_id, r.at + days * DAY, r.ok) for r in batch])
        per = (time.perf_counter() - started) / len(small) * 1000
        print(f"  write_results of 10 results     {per:7.2f} ms per transaction")

        now = START + days * DAY
        first = day_of(now, ZONE) - timedelta(days=89)
        started = time.perf_counter()
        tallies = store.day_tallies(first)
        read = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        store.last_result_at()
        last = (time.perf_counter() - started) * 1000
        print(f"  day_tallies for 90 days         {read:7.2f} ms  ({len(tallies):,} tallies)")
        print(f"  last_result_at                  {last:7.3f} ms")

        retention = args.retention_days * DAY
        for label, at in (("first prune", now), ("an hour later", now + 3600)):
            run = asyncio.run(prune_in_chunks(store, at, retention, chunk=args.chunk))
            seconds = run.duration_ms / 1000
            rate = run.rows / seconds if seconds else 0.0
            print(
                f"  prune_history, {label:<14}  {seconds:7.2f} s  {rate:>10,.0f} rows/s  "
                f"{run.rows:,} rows in {run.chunks} chunks of {args.chunk}, "
                f"longest chunk {run.longest_chunk_ms:.1f} ms"
            )
        store.close()


if __name__ == "__main__":
    main()
