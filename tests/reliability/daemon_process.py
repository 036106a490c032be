"""Run ``forewarn run`` as a real subprocess: start it, wait for /healthz, SIGTERM or SIGKILL it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.01


class DaemonProcess:
    """One daemon process at a time on ``config``; each start logs to its own numbered file.

    Use it as an async context manager: leaving it kills whatever process is still running,
    so a failing test never leaves a daemon behind.
    """

    def __init__(
        self, config: Path, log_dir: Path, *, nofile: tuple[int, int] | None = None
    ) -> None:
        self.config = config
        self.log_dir = log_dir
        self.nofile = nofile  # (soft, hard) open-file limits the daemon starts with
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.admin_port = 0  # /healthz and the operator API: port itself without admin_listen
        self.starts = 0
        self.log_path = log_dir / "daemon-0.log"

    async def start(self, timeout_s: float = 30.0) -> None:
        """Start the daemon and return once its /healthz answers 200."""
        await self.spawn()
        await self.ready(timeout_s)

    async def spawn(self) -> None:
        """Start the daemon process without waiting for it to be ready."""
        assert self.process is None, "the previous daemon is still running"
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"daemon-{self.starts}.log"
        with self.log_path.open("wb") as log:
            # stdout goes to a file, not a pipe: a burst logs one line per delivery, which
            # would fill an undrained pipe and stall the daemon.
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor",
                "run",
                "--config",
                str(self.config),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=None if self.nofile is None else self._limit,
            )

    def _limit(self) -> None:
        """In the child before exec: the open-file limits the test asked for."""
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Wait for the spawned daemon's 'started' event and a 200 from its /healthz."""
        deadline = time.monotonic() + timeout_s
        self.port = 0
        while self.port == 0:
            self._check_alive()
            assert time.monotonic() < deadline, f"no 'started' event in {self.log_path}"
            self.port = self._started_port()
            if self.port == 0:
                await asyncio.sleep(POLL_S)
        while (await self.health()) is None:
            self._check_alive()
            assert time.monotonic() < deadline, "/healthz never answered 200"
            await asyncio.sleep(POLL_S)

    @property
    def pid(self) -> int:
        """The running daemon's process id."""
        assert self.process is not None, "no daemon running"
        return self.process.pid

    async def health(self) -> dict[str, Any] | None:
        """The /healthz body while it answers 200, else None."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(f"http://127.0.0.1:{self.admin_port}/healthz") as response,
            ):
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def kill(self) -> None:
        """SIGKILL the daemon, as a power cut or the OOM killer would, and reap it."""
        process = self._take()
        try:
            process.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            code = await process.wait()
            raise AssertionError(f"daemon died before the kill ({code}):\n{self.tail()}") from None
        await _reap(process, 10.0)

    async def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM the daemon (a clean drain-and-stop) and return its exit status."""
        process = self._take()
        process.send_signal(signal.SIGTERM)
        try:
            return await _reap(process, timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log events of the current (or last) run."""
        events = []
        for line in self.log_path.read_bytes().splitlines():
            if line.startswith(b"{"):
                # The last line of a killed process may be cut short.
                with contextlib.suppress(json.JSONDecodeError):
                    events.append(json.loads(line))
        return events

    def tail(self, chars: int = 3000) -> str:
        """The end of the current (or last) run's log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def _started_port(self) -> int:
        for event in self.log_events():
            if event.get("event") == "started":
                self.admin_port = int(event.get("admin_port") or event["port"])
                return int(event["port"])
        return 0

    def _check_alive(self) -> None:
        assert self.process is not None
        code = self.process.returncode
        if code is not None:
            self.process = None
            raise AssertionError(f"daemon exited with status {code}:\n{self.tail()}")

    def _take(self) -> asyncio.subprocess.Process:
        process, self.process = self.process, None
        assert process is not None, "no daemon running"
        return process

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def _reap(process: asyncio.subprocess.Process, timeout_s: float) -> int:
    """Wait for ``process`` to exit; its exit status, or TimeoutError after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        return await process.wait()
