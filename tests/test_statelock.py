"""One daemon per state directory: an flock held for the process's life."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.runtime.statelock import LOCK_NAME, StateLock, StateLocked

HOLD = """
import sys, time
from pathlib import Path
from monitor.runtime.statelock import StateLock
StateLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_lock_on_the_same_state_is_refused_with_the_holders_pid(
    tmp_path: Path,
) -> None:
    """Even within one process, two locks on one state_dir exclude each other."""
    first = StateLock(tmp_path / "state")
    first.acquire()
    assert first.held and (tmp_path / "state" / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    with pytest.raises(StateLocked) as refused:
        StateLock(tmp_path / "state").acquire()
    assert str(refused.value) == (
        f"another forewarn is already running on {tmp_path / 'state'} (pid {os.getpid()})"
    )
    first.release()
    assert not first.held
    second = StateLock(tmp_path / "state")
    second.acquire()  # released: the next one gets it
    second.release()
    second.release()  # idempotent


def test_other_state_dirs_are_independent(tmp_path: Path) -> None:
    """The lock is per state_dir, not per machine."""
    a, b = StateLock(tmp_path / "a"), StateLock(tmp_path / "b")
    a.acquire()
    b.acquire()
    a.release()
    b.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The kernel drops the flock when its process dies, even by SIGKILL."""
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(StateLocked) as refused:
            StateLock(state).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert (state / LOCK_NAME).exists()  # the file stays; only the lock went
    lock = StateLock(state)
    deadline = time.monotonic() + 5
    while True:
        try:
            lock.acquire()
            break
        except StateLocked:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    lock.release()
