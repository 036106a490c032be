"""The dead-man's switch: ping an outside URL every interval, so a dead cluster is noticed.

``daemon.heartbeat_url`` (a Healthchecks-style URL) is pinged with a GET every ``interval``.
When the pings stop, the outside service alerts: that is how the death of every instance at
once, which no instance can report, reaches ops. The URL holds a secret token, so logs name
only its scheme and host. A failure is logged once per episode, and its end once too.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog
from yarl import URL

log = structlog.get_logger("forewarn.heartbeat")

TIMEOUT_S = 10.0  # a ping slower than this counts as failed
BODY_CAP = 1024  # bytes of the answer read, at most: the body is not used


def origin(url: str) -> str:
    """The scheme and host of ``url`` (the part that is safe to log), never its path or query."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "invalid-url"
    return f"{parsed.scheme}://{parsed.host}" if parsed.host else "invalid-url"


@dataclass(slots=True)
class Heartbeat:
    """Pings ``url`` every ``interval`` seconds through ``session`` until cancelled."""

    url: str
    interval: float
    session: aiohttp.ClientSession
    clock: Callable[[], float] = time.monotonic
    timeout: float = TIMEOUT_S
    tls: ssl.SSLContext | bool = True  # True: the system's trust store, certificates checked
    failing_since: float | None = None  # the clock's time of the first failed ping in a row
    pings: int = 0  # pings sent
    failures: int = 0  # pings failed
    # Pinged only while this says so: an instance cut off from its database must let the
    # outside switch notice, not vouch for a cluster it no longer takes part in.
    healthy: Callable[[], bool] = lambda: True

    async def run(self) -> None:
        """Ping now, then every ``interval`` after the previous ping began; never raises."""
        while True:
            started = self.clock()
            if self.healthy():
                await self.ping()
            await asyncio.sleep(max(0.0, started + self.interval - self.clock()))

    async def ping(self) -> bool:
        """Send one ping; log when a failure episode begins or ends; True when it answered 2xx."""
        self.pings += 1
        error = await self._send()
        now = self.clock()
        if error is None:
            if self.failing_since is not None:
                log.info(
                    "heartbeat_recovered",
                    target=origin(self.url),
                    failed_for=now - self.failing_since,
                )
            self.failing_since = None
            return True
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
            log.warning("heartbeat_failing", target=origin(self.url), error=error)
        return False

    async def _send(self) -> str | None:
        """GET the URL once; None when it answered 2xx, else what went wrong (no URL in it)."""
        try:
            async with self.session.get(
                self.url,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
                ssl=self.tls,
            ) as response:
                await response.content.read(BODY_CAP)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return type(exc).__name__
        except Exception as exc:  # never let the dead-man's switch die of a surprise
            return f"unexpected {type(exc).__name__}"
        return None if 200 <= status < 300 else f"HTTP {status}"
