"""``forewarn probe``: run checks once, now, in the foreground, and say how each went.

No state, no notices, no daemon: the real probes of the ``PROBES`` registry, built and run as
the scheduler does (one probe per kind, bounded concurrency, each check's own timeout).
Exit status: 0 every check passed, 1 one failed (or was degraded or inconclusive), 2 a wrong
command line or an invalid checks.yaml.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from monitor.cli.ops import printable
from monitor.config.load import Config
from monitor.core.fields import CheckBase
from monitor.probes import PROBES
from monitor.probes.base import Probe, ProbeContext, ProbeResult
from monitor.probes.heartbeat import HeartbeatBook, HeartbeatCheck
from monitor.runtime.scheduler import inconclusive_cause

PASSED, FAILED, USAGE = 0, 1, 2
SKIPPED = "skipped"


class UnknownChecks(ValueError):
    """Check ids on the command line that checks.yaml does not define."""


def chosen_checks(config: Config, ids: Sequence[str]) -> list[CheckBase]:
    """The checks named by ``ids`` (every check, canary included, when none is named)."""
    every = {check.id: check for check in (*config.checks, *config.canary)}
    if not ids:
        return list(every.values())
    unknown = [i for i in dict.fromkeys(ids) if i not in every]
    if unknown:
        known = ", ".join(every) or "none"
        raise UnknownChecks(f"unknown check {', '.join(unknown)} (known: {known})")
    return [every[i] for i in dict.fromkeys(ids)]


async def probe_once(config: Config, checks: Sequence[CheckBase]) -> list[dict[str, Any]]:
    """Run ``checks`` once with the daemon's probes and concurrency; one summary per check."""
    now = time.time()
    context = ProbeContext(HeartbeatBook.for_checks(checks, now), timezone=config.daemon.timezone)
    kinds = {c.type for c in checks if not isinstance(c, HeartbeatCheck)}
    probes: dict[str, Probe] = {kind: PROBES[kind].factory(context) for kind in kinds}
    slots = asyncio.Semaphore(config.daemon.max_concurrency)

    async def one(check: CheckBase) -> dict[str, Any]:
        if isinstance(check, HeartbeatCheck):
            # Pushed by its job to a running daemon: a one-off run has no pings to judge.
            return _skipped(check, "a heartbeat is pushed by its job to the running daemon")
        async with slots:
            try:
                result = await probes[check.type].run(check, time.time())
            except Exception as exc:  # a probe must never raise; say so rather than crash
                return _summary(check, None, f"probe bug: {type(exc).__name__}: {exc}")
        return _summary(check, result)

    try:
        return list(await asyncio.gather(*(one(check) for check in checks)))
    finally:
        for probe in probes.values():
            await probe.close()


def _status(result: ProbeResult, timeout: float) -> str:
    if inconclusive_cause(result, 0.0, timeout) is not None:
        return "inconclusive"  # the scheduler would set it aside: forewarn's own shortage
    if not result.ok:
        return "failed"
    return "degraded" if result.degraded else "ok"


def _summary(check: CheckBase, result: ProbeResult | None, bug: str = "") -> dict[str, Any]:
    """What ``forewarn probe`` reports of one check, as its JSON prints it."""
    if result is None:
        return {**_base(check), "status": "failed", "reason": "bug", "detail": bug}
    return {
        **_base(check),
        "status": _status(result, check.timeout),
        "reason": str(result.reason) if result.reason is not None else None,
        "detail": result.detail,
        "duration_s": round(result.duration_s, 4),
        "phases": {name: round(value, 4) for name, value in result.phases.items()},
    }


def _skipped(check: CheckBase, why: str) -> dict[str, Any]:
    return {**_base(check), "status": SKIPPED, "reason": None, "detail": why}


def _base(check: CheckBase) -> dict[str, Any]:
    return {
        "check": check.id,
        "service": check.service,
        "type": check.type,
        "reason": None,
        "detail": "",
        "duration_s": None,
        "phases": {},
    }


def passed(summaries: Sequence[dict[str, Any]]) -> bool:
    """True when every check probed answered as expected (heartbeats are not probed)."""
    return all(s["status"] in ("ok", SKIPPED) for s in summaries)


def text_report(summaries: Sequence[dict[str, Any]]) -> str:
    """One line per check (status, time, reason and detail), then its phases indented."""
    width = max((len(s["check"]) for s in summaries), default=0)
    lines = []
    for s in summaries:
        status = s["status"] if s["status"] in ("ok", SKIPPED) else s["status"].upper()
        took = f"{s['duration_s'] * 1000:.0f} ms" if s["duration_s"] is not None else "-"
        why = ": ".join(str(part) for part in (s["reason"], s["detail"]) if part)
        lines.append(f"{s['check']:<{width}}  {status:<12}  {took:>8}  {why}".rstrip())
        if s["phases"]:
            phases = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in s["phases"].items())
            lines.append(f"{'':<{width}}  {phases}")
    good = sum(s["status"] in ("ok", SKIPPED) for s in summaries)
    lines.append(f"{good} of {len(summaries)} passed" if summaries else "no checks to run")
    return "\n".join(lines)


def run_probe(config: Config, ids: Sequence[str], as_json: bool) -> int:
    """The ``probe`` command: its output on stdout and its exit status."""
    try:
        checks = chosen_checks(config, ids)
    except UnknownChecks as exc:
        print(f"forewarn probe: {exc}", file=sys.stderr)
        return USAGE
    try:
        summaries = asyncio.run(probe_once(config, checks))
    except KeyboardInterrupt:
        print("forewarn probe: interrupted", file=sys.stderr)
        return 130
    ok = passed(summaries)
    if as_json:
        print(json.dumps({"passed": ok, "results": summaries}, indent=2, ensure_ascii=False))
    else:
        # A detail quotes the target's answer: it must not drive the reader's terminal.
        print(printable(text_report(summaries)))
    return PASSED if ok else FAILED
