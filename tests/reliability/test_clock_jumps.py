"""The wall clock steps an hour forward and back during an open incident.

A real Daemon probes a real aiohttp target and mails a real SMTP sink; only the wall clock is
fake, at the process edge: ``Daemon(config, clock=…)`` reads real time plus an offset the test
steps by ±1 h, while the real monotonic clock drives scheduling. Probing must keep its rate,
the update cadence its promise (no early update or burst after a step forward, no hour of
silence after a step back), and the recorded outage its real length.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.cli.smtpsink import ReceivedMessage
from monitor.daemon import Daemon
from monitor.domain import clockstep
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import Incident, IncidentStatus
from tests.conftest import ConfigFactory
from tests.smtp_server import FailingSmtpServer
from tests.waiting import LoopLateness, until

HOUR = 3600.0
INTERVAL_S = 0.1
UPDATE_EVERY_S = 1.0
STABLE_FOR_S = 1.0
TRACKING_CUSTOMERS = 2  # acme and globex: every tracking notice is two messages
DRIFT_S = 0.05  # NTP slews the wall clock 0.5 ms per second at most


class SteppedClock:
    """Real wall time plus an offset the test steps, as NTP or an operator would."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Target:
    """The tracking and labels APIs; counts each request and its monotonic time."""

    url: str = ""
    broken: bool = False
    hits: list[float] = field(default_factory=list)  # monotonic times of /tracking requests

    def rate(self, since: float, until: float) -> float:
        """Requests to /tracking per second between two monotonic times."""
        return sum(since <= t < until for t in self.hits) / (until - since)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A real aiohttp server: 200 with a parcel number, or 503 while ``broken``."""
    state = Target()

    async def tracking(_: web.Request) -> web.Response:
        state.hits.append(time.monotonic())
        if state.broken:
            return web.Response(status=503, text="down")
        return web.json_response({"parcelNumber": "6A0"})

    async def labels(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/tracking", tracking)
    app.router.add_get("/l", labels)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/"))
        yield state


@dataclass
class Mailbox:
    """Every message the sink accepted, by kind, with the monotonic time it arrived."""

    arrivals: list[tuple[str, float]] = field(default_factory=list)

    def on_message(self, message: ReceivedMessage) -> None:
        self.arrivals.append((str(message.message["X-Forewarn-Kind"]), time.monotonic()))

    def times(self, kind: str) -> list[float]:
        """Arrival times of one kind, one per notice (the first of its recipients)."""
        seen = [at for k, at in self.arrivals if k == kind]
        return seen[::TRACKING_CUSTOMERS]

    def count(self, kind: str) -> int:
        """How many notices of ``kind`` arrived (each to every tracking customer)."""
        return Counter(k for k, _ in self.arrivals)[kind] // TRACKING_CUSTOMERS


async def test_a_clock_step_keeps_the_probe_rate_the_cadence_and_the_outage_length(
    make_config: ConfigFactory, target: Target, smtp: FailingSmtpServer
) -> None:
    """Steps of ±1 h leave probing, update spacing and the recorded outage as real time has them."""
    mailbox = Mailbox()
    smtp.on_message = mailbox.on_message
    config = make_config(
        interval=f"{int(INTERVAL_S * 1000)}ms",
        timeout="1s",
        retry="50ms",
        tracking_url=f"{target.url}tracking",
        labels_url=f"{target.url}l",
        transport="smtp",
        smtp_port=smtp.port,
        update_every=f"{int(UPDATE_EVERY_S * 1000)}ms",
        stable_for=f"{int(STABLE_FOR_S * 1000)}ms",
        retry_initial="100ms",
    )
    clock = SteppedClock()
    daemon = Daemon(config, clock=clock)
    await daemon.start()
    try:
        async with LoopLateness() as lateness:  # the daemon, target and sink share this loop
            await until(lambda: daemon.engine.states["tracking-ws"].status is CheckStatus.UP)
            last_up = target.hits[-1]  # the first failing run starts after this request
            target.broken = True
            await until(lambda: mailbox.count("first") == 1)
            await until(lambda: mailbox.count("update") == 1, timeout_s=3)
            steady_rate = target.rate(time.monotonic() - 1.0, time.monotonic())

            clock.offset += HOUR  # right after an update: an early one would show at once
            stepped = time.monotonic()
            await until(lambda: mailbox.count("update") == 2, timeout_s=3)
            forward_rate = target.rate(stepped, time.monotonic())

            clock.offset -= HOUR  # back: the next update must not wait an hour
            stepped = time.monotonic()
            await until(lambda: mailbox.count("update") == 3, timeout_s=3)
            backward_rate = target.rate(stepped, time.monotonic())

            target.broken = False
            await until(lambda: _open(daemon).status is IncidentStatus.MONITORING, timeout_s=3)
            clock.offset += HOUR  # while monitoring: stable_for must still be waited out in full
            monitoring_from = time.monotonic()
            await until(lambda: mailbox.count("resolved") == 1, timeout_s=5)
            resolved_after = time.monotonic() - monitoring_from
            (incident,) = daemon.store.resolved_since(0.0)
    finally:
        await daemon.stop(deadline_s=1.0)

    gaps = [
        b - a for a, b in zip(mailbox.times("update"), mailbox.times("update")[1:], strict=False)
    ]
    first_to_update = mailbox.times("update")[0] - mailbox.times("first")[0]
    print(
        f"probe rate /s: steady {steady_rate:.1f}, after +1h {forward_rate:.1f}, "
        f"after -1h {backward_rate:.1f}; update gaps {[round(g, 2) for g in gaps]} "
        f"(first->update {first_to_update:.2f}); resolved {resolved_after:.2f}s into monitoring; "
        f"notices {dict(Counter(k for k, _ in mailbox.arrivals))}"
    )
    expected = 1 / INTERVAL_S
    for rate in (steady_rate, forward_rate, backward_rate):
        assert 0.5 * expected <= rate <= 1.5 * expected
    # The promise: each update comes update_every after the last (the tick is 250 ms), neither
    # at once after a step forward nor an hour late after a step back.
    # A mail delivered late (by as much as a busy machine delayed the loop) shortens the gap
    # before it and stretches the one after.
    late = lateness.worst
    assert all(0.8 * UPDATE_EVERY_S - late <= gap <= UPDATE_EVERY_S + 0.8 + late for gap in gaps)
    # No more updates than the cadence allows over the incident (the last may fall while
    # monitoring, which keeps the cadence until resolved).
    told_for = mailbox.times("resolved")[0] - mailbox.times("first")[0]
    assert mailbox.count("update") <= told_for // UPDATE_EVERY_S
    assert mailbox.count("first") == 1
    assert resolved_after >= 0.7 * STABLE_FOR_S  # no resolution on the step itself
    # The outage as the test saw it: at most from the last good request to the "resolved"
    # mail, at least from the "first" mail to the moment monitoring began.
    outer = (last_up, mailbox.times("resolved")[0])
    inner = (mailbox.times("first")[0], monitoring_from)
    _assert_real_length(incident, inner, outer)


def _open(daemon: Daemon) -> Incident:
    (incident,) = daemon.engine.open.values()
    return incident


def _assert_real_length(
    incident: Incident, inner: tuple[float, float], outer: tuple[float, float]
) -> None:
    """The stored times are ordered and span the outage as bracketed on the monotonic clock.

    ``inner`` starts after the first failure and ends before the resolution, ``outer`` starts
    before the one and ends after the other: a busy machine widens the bracket, never breaks it.
    """
    assert incident.resolved_at is not None
    assert incident.recovered_at is not None
    assert incident.customers_told_at is not None
    assert incident.first_failure_at <= incident.opened_at <= incident.customers_told_at
    assert incident.customers_told_at <= incident.recovered_at <= incident.resolved_at
    recorded = incident.resolved_at - incident.first_failure_at
    shortest, longest = inner[1] - inner[0], outer[1] - outer[0]
    # Not an hour more, nor less; DRIFT_S for wall and monotonic clocks ticking apart.
    assert shortest - DRIFT_S <= recorded <= longest + DRIFT_S, (shortest, recorded, longest)


@pytest.mark.parametrize(
    ("wall_s", "steady_s", "expected"),
    [
        (0.25, 0.25, 0.0),  # time passing
        (0.2501, 0.25, 0.0),  # NTP slewing: far below a step
        (5.0, 5.0, 0.0),  # an event-loop stall: both clocks moved
        (HOUR + 0.25, 0.25, HOUR),  # stepped forward
        (0.25 - HOUR, 0.25, -HOUR),  # stepped back
        (1.5, 0.25, 0.0),  # a small step is not worth moving incidents for
    ],
)
def test_a_step_is_told_from_drift_and_stalls(
    wall_s: float, steady_s: float, expected: float
) -> None:
    """Only a wall-clock move the steady clock did not make, of STEP_S or more, is a step."""
    mark = (1_795_348_800.0, 1000.0)
    moved = clockstep.step(mark, mark[0] + wall_s, mark[1] + steady_s)
    assert moved == pytest.approx(expected)
    assert clockstep.step(None, mark[0], mark[1]) == 0.0
