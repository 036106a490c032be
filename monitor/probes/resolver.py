"""The system's name resolution (getaddrinfo), on threads a hung name cannot use up.

getaddrinfo blocks a thread until the system's resolver gives up (up to ~30 s with several
nameservers), and cannot be cancelled. On the event loop's small shared executor, a handful of
names that never answer hold every thread, and the lookups of healthy names queue behind them:
their checks fail with ``dns`` too. So this resolver keeps threads of its own, and a name whose
lookup is still running is not looked up again: later runs wait for that same lookup (each up
to its own deadline), so a hung name holds one thread however often its checks run.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypedDict

GetAddrInfo = Callable[..., Sequence[tuple[Any, ...]]]
"""``socket.getaddrinfo``, or a stand-in with its signature."""

_THREADS = 64  # names hung at once before healthy lookups wait; idle threads are not kept
_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
_ADDRCONFIG = getattr(socket, "AI_ADDRCONFIG", 0)

_Key = tuple[str, int, int]


class ResolveResult(TypedDict):
    """One address of a name: the keys of aiohttp's ResolveResult, so its resolvers fit too."""

    hostname: str
    host: str
    port: int
    family: int
    proto: int
    flags: int


class Resolver(Protocol):
    """What turns a host name into addresses for the probes (a test passes a fake one in).

    Our own rather than aiohttp's ``AbstractResolver``: the probes no longer use aiohttp, and
    probe workers then need not import it (12 MB).
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        """The addresses of ``host``; raises OSError when it does not resolve."""
        ...

    async def close(self) -> None:
        """Release what the resolver holds."""
        ...


class SystemResolver:
    """getaddrinfo on its own threads, one lookup in flight per (host, port, family)."""

    def __init__(self, getaddrinfo: GetAddrInfo = socket.getaddrinfo, threads: int = _THREADS):
        """Create the resolver; threads start on demand, inside the first lookups."""
        self._getaddrinfo = getaddrinfo
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[_Key, asyncio.Future[list[ResolveResult]]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        """The addresses of ``host``; raises ``socket.gaierror`` when it does not resolve."""
        key = (host, port, int(family))
        loop = asyncio.get_running_loop()
        lookup = self._inflight.get(key)
        if lookup is None or lookup.get_loop() is not loop:  # (a loop closed under a lookup)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="resolve")
            lookup = loop.run_in_executor(self._pool, self._lookup, host, port, family)
            self._inflight[key] = lookup
            lookup.add_done_callback(lambda done: self._finished(key, done))
        # A run that gives up (its deadline) leaves the lookup to the others and to the thread.
        return await asyncio.shield(lookup)

    def _finished(self, key: _Key, done: asyncio.Future[list[ResolveResult]]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # retrieved, even when every run waiting for it has given up

    def _lookup(self, host: str, port: int, family: int) -> list[ResolveResult]:
        """In a worker thread: getaddrinfo, as aiohttp's ThreadedResolver calls it."""
        infos = self._getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, _ADDRCONFIG)
        hosts: list[ResolveResult] = []
        for info_family, _type, proto, _name, address in infos:
            if info_family == socket.AF_INET6:
                if len(address) < 3:
                    continue  # IPv6 without a scope field: not usable by this Python
                if address[3]:  # link-local: the scope must travel with the address
                    name, _port = socket.getnameinfo(address, _NUMERIC)
                else:
                    name = address[0]
            else:
                name = address[0]
            hosts.append(
                ResolveResult(
                    hostname=host,
                    host=str(name),
                    port=int(address[1]),
                    family=int(info_family),
                    proto=proto,
                    flags=_NUMERIC,
                )
            )
        return hosts

    async def close(self) -> None:
        """Stop the threads once their lookups return; never waits for a hung one."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def chosen(given: Resolver | None) -> tuple[Resolver, SystemResolver | None]:
    """The resolver to use, and the one of our own to close with the probe (none was given)."""
    if given is not None:
        return given, None
    owned = SystemResolver()
    return owned, owned
