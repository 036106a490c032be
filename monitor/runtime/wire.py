"""What the daemon and its probe workers say to each other, and how it is framed on a socket.

A frame is a 4-byte length and a pickle. Pickle is safe here: both ends are forewarn
processes the daemon started itself, on a socket pair no one else holds.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass, field

from monitor.core.fields import CheckBase
from monitor.probes.base import ProbeResult
from monitor.probes.http import HttpCheck, HttpPlan

_LENGTH = struct.Struct(">I")


Planned = CheckBase | HttpPlan
"""A check as a worker gets it: http checks (nearly all of them) as plain plans."""


def slim(check: CheckBase) -> Planned:
    """``check`` as a worker holds it: an http check becomes its plan.

    Equal expectations are one object already (``config.load.share_expectations``): pickle
    sends each once per hand-over, and the worker holds it once, not once per check.
    """
    return check.plan() if isinstance(check, HttpCheck) else check


@dataclass(frozen=True, slots=True)
class Assign:
    """Daemon → worker: run exactly these checks from now on (first message, then reloads)."""

    checks: tuple[Planned, ...]
    timezone: str
    max_concurrency: int


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Daemon → worker: for each result sequence number, whether its check is confirming."""

    confirming: dict[int, bool]


@dataclass(frozen=True, slots=True)
class Report:
    """Worker → daemon: what happened since the last report; also sent as a pulse when idle."""

    results: list[tuple[int, ProbeResult]] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # seconds each probe started late
    # Results set aside as inconclusive, and why (a scheduler ``Cause``).
    inconclusive: list[tuple[ProbeResult, str]] = field(default_factory=list)
    loop_lag_s: float = 0.0  # the worker's worst recent stall, for /healthz


def encode(message: Assign | Verdicts | Report) -> bytes:
    """One frame holding ``message``."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> object:
    """The next message; raises ``asyncio.IncompleteReadError`` when the other end has gone."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))  # noqa: S301 - our own child process
