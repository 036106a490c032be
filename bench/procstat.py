"""What a process costs, read from /proc: CPU seconds (user + sys), RSS, open fds, threads.

Works for this process and for children (nginx, blackbox_exporter). ``sample(pid)`` is one
process with all its threads; ``sample_tree(pid)`` adds every descendant, for servers that
fork workers. CPU of reaped children (``cutime``/``cstime``) is never included.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a process (or a process tree) at ``at`` (monotonic seconds)."""

    at: float
    user_s: float
    sys_s: float
    rss_mb: float
    fds: int
    threads: int

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds."""
        return self.user_s + self.sys_s

    def __add__(self, other: Sample) -> Sample:
        """Two processes read together: sums, and the later reading time."""
        return Sample(
            at=max(self.at, other.at),
            user_s=self.user_s + other.user_s,
            sys_s=self.sys_s + other.sys_s,
            rss_mb=self.rss_mb + other.rss_mb,
            fds=self.fds + other.fds,
            threads=self.threads + other.threads,
        )


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name, which may itself hold spaces and parentheses."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        text = stat.read()
    return text[text.rindex(")") + 2 :].split()


def sample(pid: int | None = None) -> Sample:
    """CPU, RSS, fds and threads of ``pid`` (default: this process), all threads included."""
    pid = os.getpid() if pid is None else pid
    at = time.monotonic()
    fields = _stat_fields(pid)  # fields[0] is the state, field 3 of proc(5)
    threads = int(fields[17])
    if pid == os.getpid():
        # getrusage has microsecond resolution where /proc/self/stat counts clock ticks.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        user_s, sys_s = usage.ru_utime, usage.ru_stime
    else:
        user_s, sys_s = int(fields[11]) * _TICK_S, int(fields[12]) * _TICK_S
    with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        rss_mb = int(statm.read().split()[1]) * _PAGE_MB
    return Sample(at, user_s, sys_s, rss_mb, open_fds(pid), threads)


def open_fds(pid: int | None = None) -> int:
    """How many file descriptors ``pid`` has open (0 when they cannot be read)."""
    try:
        return len(os.listdir(f"/proc/{os.getpid() if pid is None else pid}/fd"))
    except OSError:
        return 0


def proportional_mb(pid: int) -> float:
    """``pid``'s proportional set size (shared pages divided among their users), in MB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for text in rollup:
                if text.startswith("Pss:"):
                    return int(text.split()[1]) / 1024
    except OSError:
        pass  # exited meanwhile
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid``, by scanning the parent of each process."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(name))[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        parents.setdefault(ppid, []).append(int(name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def sample_tree(pid: int) -> Sample:
    """``sample(pid)`` plus every descendant still alive (a master and its workers)."""
    total = sample(pid)
    for child in descendants(pid):
        try:
            total = total + sample(child)
        except OSError:
            continue  # exited between the scan and the read
    return total


def machine_busy_s() -> float:
    """CPU seconds every CPU of the machine has spent busy since boot (all processes, irqs)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user).
    return sum(fields[i] for i in (0, 1, 2, 5, 6, 7)) * _TICK_S


def cpu_s(pid: int | None = None) -> float:
    """User plus system CPU seconds of ``pid`` (default: this process)."""
    return sample(pid).cpu_s
