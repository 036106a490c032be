"""Probe workers forked from one process that imported everything once.

Started with ``python -m monitor.runtime.forkserver``, the fork server imports the worker
and every probe kind (aiohttp, pydantic, uvloop, structlog: tens of MB), freezes that heap
out of the garbage collector's reach and forks a worker whenever the daemon asks. Workers
share those pages with it and with each other, copy-on-write, instead of each importing its
own copy.

The daemon and the server talk over a SOCK_SEQPACKET socket pair, one JSON message per
packet: the daemon sends ``{"index", "log_level", "json"}`` with the worker's end of a fresh
socket pair attached (SCM_RIGHTS); the server answers ``{"index", "pid"}``, and
``{"exited": pid, "code": c}`` when a worker ends (a negative code: killed by that signal,
as ``asyncio.subprocess`` reports it). When the daemon closes its end, the server exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys
from typing import Any

import structlog

log = structlog.get_logger("forewarn.forkserver")

_PACKET = 4096
POLL_S = 0.1  # how often a worker is looked for once its fork server has gone


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc only; elsewhere nothing).

    Loading and handing over 10,000 checks leaves tens of MB freed but still resident.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


class Child:
    """One worker forked by the server: its pid, its end of the socket, its exit code."""

    def __init__(self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.pid = pid
        self.reader = reader
        self.writer = writer
        self.returncode: int | None = None
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def ended(self, code: int) -> None:
        """Note the exit code the server reported."""
        if not self.exited.done():
            self.returncode = code
            self.exited.set_result(code)

    async def wait(self) -> int:
        """The exit code, once the worker has exited."""
        return await asyncio.shield(self.exited)

    def kill(self) -> None:
        """SIGKILL the worker, if it is still there."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """The daemon's end: starts the server, asks it for workers, hears of their exits."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.ctl: socket.socket | None = None
        self.children: dict[int, Child] = {}
        self.started: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.asking = asyncio.Lock()  # one request in flight: answers come in order
        self.listening: asyncio.Task[None] | None = None
        self.watching: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Start the server process (it imports everything before it answers)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor.runtime.forkserver",
                f"--ctl={theirs.fileno()}",
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        mine.setblocking(False)
        self.ctl = mine
        self.listening = asyncio.create_task(self._listen(mine), name="forkserver")

    async def spawn(self, index: int, log_level: str, json_logs: bool) -> Child:
        """Fork worker ``index``; returns once it runs, with the daemon's end of its socket."""
        async with self.asking:
            if self.ctl is None or self.listening is None or self.listening.done():
                await self.close()
                await self.open()
            assert self.ctl is not None
            ours, theirs = socket.socketpair()
            with theirs:
                ask = {"index": index, "log_level": log_level, "json": json_logs}
                socket.send_fds(self.ctl, [json.dumps(ask).encode()], [theirs.fileno()])
            answer = await self.started.get()
            if "pid" not in answer:
                ours.close()
                raise OSError("the fork server has gone")
        reader, writer = await asyncio.open_connection(sock=ours)
        child = self.children[answer["pid"]] = Child(answer["pid"], reader, writer)
        return child

    async def close(self) -> None:
        """Close the control socket: the server exits (its workers are stopped apart)."""
        ctl, self.ctl = self.ctl, None
        if ctl is not None:
            ctl.close()
        if self.listening is not None:
            self.listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listening
            self.listening = None
        self.started = asyncio.Queue()  # an answer left by a server that went is stale
        if self.process is not None:
            await self.process.wait()
            self.process = None

    async def _listen(self, ctl: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while packet := await loop.sock_recv(ctl, _PACKET):
                message = json.loads(packet)
                if "exited" in message:
                    child = self.children.pop(message["exited"], None)
                    if child is not None:
                        child.ended(message["code"])
                else:
                    self.started.put_nowait(message)
        except OSError:
            pass
        # The server has gone (not cancelled by close): a spawn waiting gets no answer, and
        # workers it had forked are watched another way.
        self.started.put_nowait({})
        for child in self.children.values():
            task = asyncio.create_task(_watch(child))
            self.watching.add(task)
            task.add_done_callback(self.watching.discard)
        self.children.clear()


async def _watch(child: Child) -> None:
    """Wait for a worker whose server has gone: poll until its pid is gone."""
    while True:
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            child.ended(-1)
            return
        await asyncio.sleep(POLL_S)


def serve(ctl: socket.socket) -> None:
    """The server's loop: fork a worker per request, report each exit, stop on EOF."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select through the fd
    while True:
        ready, _, _ = select.select([ctl.fileno(), wake_r], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 512)
        _reap(ctl)
        if ctl.fileno() not in ready:
            continue
        try:
            packet, fds, _, _ = socket.recv_fds(ctl, _PACKET, 1)
        except OSError:
            return
        if not packet:
            return  # the daemon has gone: workers see their own sockets close
        ask = json.loads(packet)
        pid = os.fork()
        if pid == 0:
            os.close(wake_r)
            os.close(wake_w)
            ctl.close()
            _child(fds[0], ask)
        for fd in fds:
            os.close(fd)
        ctl.send(json.dumps({"index": ask["index"], "pid": pid}).encode())


def _reap(ctl: socket.socket) -> None:
    """Report every worker that has exited since the last look."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exited = {"exited": pid, "code": os.waitstatus_to_exitcode(status)}
        with contextlib.suppress(OSError):
            ctl.send(json.dumps(exited).encode())


def _child(fd: int, ask: dict[str, Any]) -> None:
    """In the forked worker: undo the server's signal set-up, run, never return."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    code = 1
    try:
        from monitor.runtime import worker

        worker.run(socket.socket(fileno=fd), ask["index"], ask["log_level"], ask["json"])
        code = 0
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # not through the server's own exit path


def main() -> None:
    """Entry point of ``python -m monitor.runtime.forkserver``."""
    ctl_fd = int(sys.argv[1].removeprefix("--ctl="))
    # Ctrl-C or SIGTERM to the process group: the daemon decides when the server stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.dup2(2, 1)  # anything printed goes to stderr; workers talk over their sockets
    from monitor.runtime import worker  # noqa: F401 - the preload: every probe kind, once

    gc.collect()
    gc.freeze()  # shared with every worker: never scanned, so never copied by the GC
    serve(socket.socket(fileno=ctl_fd))


if __name__ == "__main__":
    main()
