"""sd_notify(3) without a dependency: readiness, status, reload, stop and the watchdog.

Messages are datagrams to the unix socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract
name written ``@name``). Without that variable (not started by systemd) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping

import structlog

log = structlog.get_logger("forewarn.systemd")

STATUS_EVERY_S = 10.0
# The scheduler and the dispatcher wake at least once a second even when idle, so a loop is
# only called stuck once it made no progress for longer than this, whatever WATCHDOG_USEC is.
MIN_STALL_S = 2.0


class SystemdNotifier:
    """Sends sd_notify messages; silent when not run by systemd."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._socket: socket.socket | None = None
        if address:
            # "@name" is Linux's abstract namespace: a leading NUL byte, no file.
            self._target = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SystemdNotifier:
        """A notifier for ``$NOTIFY_SOCKET`` (a no-op one when unset)."""
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self._socket is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False when nobody listens or it failed."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(fields).encode("utf-8"), self._target)
        except OSError as exc:  # systemd gone or its queue full: never fatal for the daemon
            log.warning("sd_notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        """Startup or reload finished."""
        return self.send("READY=1", f"STATUS={one_line(status)}")

    def reloading(self) -> bool:
        """A reload starts (systemd ≥ 253 wants the monotonic time with it)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str = "stopping") -> bool:
        """Shutdown started."""
        return self.send("STOPPING=1", f"STATUS={one_line(status)}")

    def status(self, status: str) -> bool:
        """The one-line summary ``systemctl status`` shows."""
        return self.send(f"STATUS={one_line(status)}")

    def watchdog(self) -> bool:
        """Tell systemd we are alive."""
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def one_line(text: str) -> str:
    """``text`` on one line: a newline would start another sd_notify field."""
    return " ".join(text.split())


def watchdog_period(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The full watchdog timeout in seconds, or None when no watchdog is asked of us."""
    env = os.environ if env is None else env
    usec, owner = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None  # meant for another process (our parent, say)
    return int(usec) / 1_000_000


def stall_limit(period: float) -> float:
    """How long a loop may go without progress before pings stop."""
    return max(period, MIN_STALL_S)


def progressing(now: float, marks: Iterable[float], limit: float) -> bool:
    """Whether every loop made progress within ``limit`` seconds of ``now`` (monotonic)."""
    return all(now - mark <= limit for mark in marks)


async def supervise(
    notifier: SystemdNotifier,
    progress: Callable[[], Iterable[float]],
    status: Callable[[], str],
    *,
    period: float | None,
    status_every: float = STATUS_EVERY_S,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Ping the watchdog every ``period / 2`` while the loops progress; refresh STATUS.

    It runs on the event loop: a blocked loop stops the pings by itself, and a loop that runs
    while the scheduler or the dispatcher is stuck stops them through ``progressing``.
    """
    if not notifier.enabled:
        return
    step = min(status_every, period / 2) if period else status_every
    limit = stall_limit(period) if period else 0.0
    next_status = clock() + status_every
    stalled = False
    while True:
        await asyncio.sleep(step)
        now = clock()
        if period:
            if progressing(now, progress(), limit):
                notifier.watchdog()
                stalled = False
            elif not stalled:
                stalled = True
                log.error("watchdog_withheld", reason="a loop made no progress", limit_s=limit)
        if now >= next_status:
            next_status = now + status_every
            notifier.status(status())
