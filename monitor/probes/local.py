"""Errors that say forewarn itself ran out of resources, which says nothing about the target.

The signal is the errno, never the message text: ``EMFILE`` (this process's descriptors),
``ENFILE`` (the system's), ``ENOBUFS``/``ENOMEM`` (kernel buffers, memory) and
``EADDRNOTAVAIL`` (no local port left). A name lookup hides it: glibc's getaddrinfo, unable to
open ``/etc/hosts`` or a socket, answers "Name or service not known" (or a stray errno), so a
failed lookup is followed by one test of whether this process can open a socket right now.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator

from monitor.probes.base import Reason

LOCAL_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL}
)
_DEPTH = 8  # causes followed: aiohttp and dnspython wrap the OSError once or twice

LocalVerdict = tuple[Reason, str]


def is_local(number: int | None) -> bool:
    """True for an errno that means this host or process is out of some resource."""
    return number in LOCAL_ERRNOS


def local_errno(exc: BaseException) -> int | None:
    """The local-exhaustion errno carried by ``exc`` or one of its causes, if any."""
    for found in _chain(exc):
        # A gaierror's errno is an EAI_* code, a different numbering: never one of ours.
        if isinstance(found, socket.gaierror) or not isinstance(found, OSError):
            continue
        if found.errno is not None and is_local(found.errno):
            return found.errno
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what it wraps (aiohttp's ``os_error``, dnspython's per-server errors) and causes."""
    pending: list[tuple[BaseException, int]] = [(exc, 0)]
    seen: set[int] = set()
    while pending:
        current, depth = pending.pop()
        if id(current) in seen or depth > _DEPTH:
            continue
        seen.add(id(current))
        yield current
        inner: list[object] = [getattr(current, "os_error", None), current.__cause__]
        inner.append(current.__context__)
        kwargs = getattr(current, "kwargs", None)  # dnspython: NoNameservers(errors=[…])
        if isinstance(kwargs, dict):
            for error in kwargs.get("errors") or ():
                if isinstance(error, tuple) and len(error) > 3:
                    inner.append(error[3])
        pending.extend((e, depth + 1) for e in inner if isinstance(e, BaseException))


def socket_refused() -> int | None:
    """The local-exhaustion errno with which opening a socket fails right now, if it does."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    except OSError as exc:
        return exc.errno if is_local(exc.errno) else None
    return None


def local_failure(exc: BaseException, *, resolving: bool = False) -> LocalVerdict | None:
    """``local_resources`` and a detail when ``exc`` comes from our own exhaustion, else None.

    ``resolving``: the error ended a name lookup, whose own error does not carry the errno.
    """
    number = local_errno(exc)
    if number is None and resolving:
        number = socket_refused()
    return None if number is None else verdict(number)


def verdict(number: int) -> LocalVerdict:
    """The reason and detail of a run that failed with local errno ``number``."""
    name = errno.errorcode.get(number, str(number))
    detail = f"forewarn itself is out of resources: {name} ({os.strerror(number)})"
    return Reason.LOCAL_RESOURCES, detail
