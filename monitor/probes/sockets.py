"""A TCP connection to a named host: its addresses in resolver order, each tried in turn.

``addresses`` serves every kind; ``connect`` the tcp and tls kinds (the http client opens its
own connections with a protocol of its own, ``http1.Answer``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from functools import lru_cache
from time import perf_counter

from monitor.probes.resolver import Resolver


@lru_cache(maxsize=4096)
def _literal_family(host: str) -> socket.AddressFamily | None:
    """The address family of an IP literal, or None for a name that needs resolving."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


async def addresses(
    resolver: Resolver, host: str, port: int, phases: dict[str, float]
) -> list[tuple[socket.AddressFamily, str]]:
    """Addresses to try, in resolver order; IP literals skip the resolver."""
    family = _literal_family(host)
    if family is not None:
        return [(family, host)]
    mark = perf_counter()
    infos = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
    phases["resolve"] = perf_counter() - mark
    targets: list[tuple[socket.AddressFamily, str]] = []
    for info in infos:
        target = (socket.AddressFamily(info["family"]), info["host"])
        if target not in targets:
            targets.append(target)
    return targets


async def connect(
    targets: list[tuple[socket.AddressFamily, str]], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Try each address in turn; the last error stands for all when none answers."""
    error: OSError = OSError("no address to connect to")
    for family, address in targets:
        try:
            return await asyncio.open_connection(address, port, family=family)
        except OSError as exc:
            error = exc
    raise error
