"""One daemon per state directory: an exclusive ``flock`` on ``state_dir/forewarn.lock``.

The kernel drops a ``flock`` when the last descriptor of its open file goes away, so the lock
is released on a clean exit, a crash and a SIGKILL alike: a stale lock file never blocks a
restart. The file is never deleted (deleting it would let two daemons lock two different
files of the same name); it only holds the owner's pid, for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from monitor.core.private import private_dir

LOCK_NAME = "forewarn.lock"


class StateLocked(Exception):
    """Another process holds the state directory."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        owner = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another forewarn is already running on {state_dir} ({owner})")
        self.state_dir = state_dir
        self.pid = pid


class StateLock:
    """The exclusive lock on one state directory, held from ``acquire()`` to ``release()``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting; raise StateLocked when another process has it."""
        if self._fd is not None:
            return
        private_dir(self.state_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateLocked(self.state_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the next daemon in; the file stays (see the module docstring)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor releases the flock


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, if it wrote one yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
