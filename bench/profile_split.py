"""Where a probe's CPU goes: py-spy's folded stacks split into the pipeline's parts.

``py-spy record -f raw -o run.folded --pid <daemon>`` samples the daemon (idle time left
out); each sample is given to the first part, in the order of ``PARTS``, whose marker its stack
holds. Multiplied by the CPU per probe the benchmark measured, each share becomes microseconds.

Run: ``python -m bench.profile_split run.folded --cpu-ms-per-probe 0.49 [other.folded …]``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# (part, markers): the first part with a marker in a sample's stack takes the sample.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("history: results written to SQLite (monitor/store)", ("sqlite.py", "results.py")),
    ("metrics of each result", ("Metrics.record",)),
    ("detector and engine state", ("Engine.observe",)),
    ("result folding, other (log call, buffer, verdict)", ("Engine.ingest", "on_result")),
    ("tick: incidents, windows, commit", ("Daemon._tick", "_advance")),
    (
        "TCP connect and socket set-up (system calls)",
        ("_connect_sock", "socket.__init__", "HttpClient._connect"),
    ),
    (
        "HTTP exchange: request, response (aiohttp before; http1 after)",
        ("ClientSession._request", "client.py", "HttpClient.send", "http1.py", "httpbody.py"),
    ),
    ("probe around the exchange (deadline, judging, result)", ("HttpProbe.run",)),
    ("scheduler (due checks, wake-ups, lateness)", ("Scheduler",)),
    ("event loop itself (uvloop, C)", ("Runner.run",)),
)
OTHER = "other"
# Not a probe's cost: the scrape bench.throughput makes once its window is over (on a
# thread), and samples of threads waiting with no Python frame.
IGNORED = ("generate_latest",)


def split(path: Path) -> Counter[str]:
    """Samples per part in one folded-stacks file."""
    parts: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.strip() or any(mark in stack for mark in IGNORED):
            continue
        part = next((name for name, marks in PARTS if any(m in stack for m in marks)), OTHER)
        parts[part] += int(count)
    return parts


def table(files: list[Path], cpu_ms: list[float]) -> str:
    """A Markdown table: each part's share and microseconds per probe, one column per file."""
    splits = [split(path) for path in files]
    head = "| part | " + " | ".join(f"{p.stem}: share, µs/probe" for p in files) + " |"
    lines = [head, "| --- |" + " --- |" * len(files)]
    for name in [*(name for name, _ in PARTS), OTHER]:
        cells = []
        for parts, ms in zip(splits, cpu_ms, strict=True):
            share = parts[name] / max(1, sum(parts.values()))
            cells.append(f"{share:.1%}, {share * ms * 1000:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    total = " | ".join(f"100 %, {ms * 1000:.0f}" for ms in cpu_ms)
    lines.append(f"| **total** (measured by `bench.throughput`) | {total} |")
    return "\n".join(lines)


def main() -> None:
    """Print the table for the files given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folded", type=Path, nargs="+")
    parser.add_argument("--cpu-ms-per-probe", type=float, nargs="+", required=True)
    args = parser.parse_args()
    print(table(args.folded, args.cpu_ms_per_probe))


if __name__ == "__main__":
    main()
