"""Bearer tokens for the operator API: the token file, the check, and brute-force throttling.

Only SHA-256 digests of the tokens are kept in memory, and a request's token is found by its
digest: the lookup's timing then depends on the digest, which reveals nothing usable about
the secret. A token never appears in a log line or an error message, not even a line of the
token file that fails to parse.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

import structlog
from aiohttp import web

from monitor.config.tokens import TOKEN_PATTERN, digest, read_token_lines

log = structlog.get_logger("forewarn.web.auth")

MAX_FAILURES = 5  # bad tokens one client may send per FAILURE_WINDOW_S before a 429
FAILURE_WINDOW_S = 60.0
MAX_CLIENTS = 10_000  # addresses remembered in the failure book; the oldest go first
REALM = 'Bearer realm="forewarn"'


@dataclass(frozen=True, slots=True)
class Token:
    """Who holds a token and whether it may change things (``write``) or only read."""

    name: str
    write: bool


@dataclass(frozen=True, slots=True)
class Tokens:
    """The API's known tokens, by SHA-256 digest of the secret."""

    by_digest: Mapping[bytes, Token]

    def lookup(self, secret: str) -> Token | None:
        """The token whose secret this is, or None."""
        if not TOKEN_PATTERN.fullmatch(secret):  # no known token looks so; it may not encode
            return None
        return self.by_digest.get(digest(secret))

    def __len__(self) -> int:
        return len(self.by_digest)


def load_tokens(path: Path) -> Tokens:
    """Read a token file into digests; ValueError("<path>:<line>: <message>") for a bad line."""
    return Tokens({digest(t.secret): Token(t.name, t.write) for t in read_token_lines(path)})


def json_error(error: type[web.HTTPException], message: str, **headers: str) -> web.HTTPException:
    """An aiohttp HTTP error whose body is ``{"error": message}``."""
    return error(
        text=json.dumps({"error": message}),
        content_type="application/json",
        headers={"Cache-Control": "no-store", **headers},
    )


def unauthorized(message: str) -> web.HTTPException:
    """A 401 that tells the client to present a bearer token."""
    return json_error(web.HTTPUnauthorized, message, **{"WWW-Authenticate": REALM})


class FailureBook:
    """Recent bad-token times per client, bounded in clients and in times per client."""

    def __init__(self, max_clients: int = MAX_CLIENTS) -> None:
        self.max_clients = max_clients
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, now: float) -> float:
        """Seconds until ``client`` may try again; 0 when it is not throttled."""
        times = self._times.get(client)
        if times is None or len(times) < MAX_FAILURES:
            return 0.0
        # maxlen keeps only the last MAX_FAILURES: the oldest of them decides.
        return max(0.0, times[0] + FAILURE_WINDOW_S - now)

    def record(self, client: str, now: float) -> None:
        """Note one bad token from ``client``."""
        times = self._times.pop(client, None)
        if times is None:
            times = deque(maxlen=MAX_FAILURES)
            # Kept in order of last failure, so the first is the one least likely throttled.
            while len(self._times) >= self.max_clients:
                self._times.popitem(last=False)
        times.append(now)
        self._times[client] = times

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[str]:
        return iter(self._times)


def client_key(remote: str | None) -> str:
    """Who is throttled: the address, or its /64 for IPv6 (one host usually owns a /64)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(request: web.Request, proxies: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client's address: ``X-Forwarded-For`` is believed only from a trusted proxy.

    The chain is read from the right, skipping trusted proxies: the first other address is
    the one our own proxies saw, which a client cannot forge (entries to its left it can).
    """
    remote = request.remote or ""
    if not proxies or not _in(remote, proxies):
        return remote
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",")]
    for hop in reversed(hops):
        if not _in(hop, proxies):
            return hop if _is_ip(hop) else remote
    return remote


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in(text: str, proxies: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in proxies)


class BearerAuth:
    """Checks ``Authorization: Bearer …`` against the known tokens, throttling guessers.

    A valid token always passes: only bad attempts are counted and throttled, so that no one
    can lock an operator out by guessing from the operator's address (or from behind the same
    reverse proxy). Tokens have at least 20 characters of a 66-letter alphabet (over 120
    bits): the throttle keeps guessers out of the logs; it is not what makes guessing futile.
    """

    def __init__(
        self,
        tokens: Tokens,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_clients: int = MAX_CLIENTS,
        proxies: Sequence[IPv4Network | IPv6Network] = (),
    ) -> None:
        self.tokens = tokens
        self.clock = clock
        self.failures = FailureBook(max_clients)
        self.proxies = tuple(proxies)

    def check(self, request: web.Request, *, write: bool) -> str:
        """The token's name; raises 401 (none or unknown), 403 (read-only on a write), 429."""
        client = client_key(client_address(request, self.proxies))
        now = self.clock()
        scheme, _, secret = request.headers.get("Authorization", "").strip().partition(" ")
        secret = secret.strip()
        token = self.tokens.lookup(secret) if scheme.lower() == "bearer" and secret else None
        if token is None:
            wait = self.failures.retry_after(client, now)
            if wait > 0:
                raise json_error(
                    web.HTTPTooManyRequests,
                    "too many bad tokens from this address; try again later",
                    **{"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if scheme.lower() != "bearer" or not secret:
            raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        if token is None:
            self.failures.record(client, now)
            log.warning("api_bad_token", client=client, path=request.path)
            raise unauthorized("invalid token")
        if write and not token.write:
            log.warning(
                "api_read_only_token", operator=token.name, client=client, path=request.path
            )
            raise json_error(web.HTTPForbidden, f"token {token.name!r} is read-only")
        return token.name
