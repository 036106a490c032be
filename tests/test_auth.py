"""Bearer tokens: the token file, and the check as a real aiohttp server applies it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.config.tokens import read_token_lines
from monitor.web.auth import BearerAuth, Tokens, client_key, load_tokens

WRITE = "ops-token-0123456789abcdef"
READ = "grafana-token-0123456789abcd"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_file(folder: Path, text: str) -> Path:
    """Write ``text`` as a token file."""
    path = folder / "api-tokens"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    """One write token and one read-only token, loaded from a real file."""
    return load_tokens(token_file(tmp_path, f"# who\nops:{WRITE}\n\n  grafana:{READ}:read  \n"))


@pytest.fixture
def clock() -> Clock:
    """Time for the failure book."""
    return Clock()


@pytest.fixture
def auth(tokens: Tokens, clock: Clock) -> BearerAuth:
    """The check under test."""
    return BearerAuth(tokens, clock, max_clients=2)


@pytest.fixture
async def url(auth: BearerAuth) -> AsyncIterator[str]:
    """A server whose GET /x reads and POST /x writes; each answers the token's name."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=auth.check(request, write=request.method == "POST"))

    app = web.Application()
    app.router.add_route("*", "/x", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/x"))
    finally:
        await server.close()


async def call(
    url: str, token: str | None, method: str = "GET", source: str = "127.0.0.1"
) -> tuple[int, str, dict[str, str]]:
    """Send one request from ``source`` and return status, body and headers."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, url, headers=headers) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


def test_token_file_skips_comments_and_blank_lines_and_keeps_scopes(tokens: Tokens) -> None:
    """Both tokens are known, write by default, read when said; unknown ones are not."""
    ops, grafana = tokens.lookup(WRITE), tokens.lookup(READ)
    assert ops is not None and (ops.name, ops.write) == ("ops", True)
    assert grafana is not None and (grafana.name, grafana.write) == ("grafana", False)
    assert tokens.lookup(WRITE + "x") is None and len(tokens) == 2
    assert tokens.lookup("ops-token-\udcff-0123456789abcdef") is None  # unencodable: unknown


def test_only_digests_of_tokens_are_kept_in_memory(tokens: Tokens) -> None:
    """The secrets appear nowhere in what load_tokens returns."""
    assert all(len(digest) == 32 for digest in tokens.by_digest)
    assert WRITE not in repr(tokens) and READ not in repr(tokens)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ops:short-token", "shorter than 20 characters"),
        ("ops-no-colon-0123456789abcdef", "expected name:token or name:token:read"),
        ("ops:0123456789abcdef0123:admin", "the scope must be read or write"),
        ("ops:0123456789:abcdef0123", "the scope must be read or write"),
        ("ops:0123456789abcdef0123é", "characters outside"),
        ("ops:0123456789abcdef0123:read:x", "expected name:token or name:token:read"),
        ("o ps:0123456789abcdef0123", "the name must be"),
        ("ops:0123456789 abcdef0123", "characters outside"),
    ],
)
def test_a_bad_line_is_named_by_path_and_line_without_its_token(
    tmp_path: Path, line: str, message: str
) -> None:
    """The error says where and what, and never repeats the secret."""
    path = token_file(tmp_path, f"# tokens\nfine:{WRITE}\n{line}\n")
    with pytest.raises(ValueError) as caught:
        load_tokens(path)
    error = str(caught.value)
    assert error.startswith(f"{path}:3: ") and message in error
    assert "0123456789abcdef0123" not in error and "short-token" not in error


def test_the_same_token_twice_is_refused(tmp_path: Path) -> None:
    """Two names for one secret would make the audit log lie."""
    path = token_file(tmp_path, f"a:{WRITE}\nb:{WRITE}:read\n")
    with pytest.raises(ValueError, match=r":2: same token as line 1$"):
        load_tokens(path)


def test_unreadable_or_non_utf8_files_are_errors_not_crashes(tmp_path: Path) -> None:
    """A missing file and a Latin-1 file both give ValueError naming the path."""
    with pytest.raises(ValueError, match=r"nope:1: cannot read"):
        load_tokens(tmp_path / "nope")
    latin = tmp_path / "latin"
    latin.write_bytes(f"ops:{WRITE}\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin:2: not UTF-8 text"):
        load_tokens(latin)


def test_read_token_lines_gives_the_cli_its_secrets_in_file_order(tmp_path: Path) -> None:
    """The CLI needs the secret itself to send it; it comes back with name and scope."""
    lines = read_token_lines(token_file(tmp_path, f"grafana:{READ}:read\nops:{WRITE}\n"))
    assert [(t.name, t.secret, t.write) for t in lines] == [
        ("grafana", READ, False),
        ("ops", WRITE, True),
    ]


async def test_a_valid_token_answers_with_its_name(url: str) -> None:
    """Write tokens read and write; read tokens read."""
    assert (await call(url, WRITE, "POST"))[:2] == (200, "ops")
    assert (await call(url, READ))[:2] == (200, "grafana")


async def test_missing_or_unknown_tokens_get_a_bearer_challenge(url: str) -> None:
    """401 with WWW-Authenticate, and a JSON error that does not echo the token."""
    for token in (None, "", "not-a-real-token-at-all-00"):
        status, body, headers = await call(url, token)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Bearer realm="forewarn"'
        assert body.startswith('{"error": ') and "not-a-real" not in body


async def test_a_read_only_token_cannot_write(url: str) -> None:
    """A read token on a write is 403, not 401: it is known, just not allowed."""
    status, body, _ = await call(url, READ, "POST")
    assert status == 403 and "read-only" in body


async def test_five_bad_tokens_from_one_address_get_429_until_a_minute_passes(
    url: str, clock: Clock
) -> None:
    """After 5 bad tokens more bad ones wait, with Retry-After; the right one never does."""
    guess = "guess-0123456789abcdefgh"
    for _ in range(5):
        assert (await call(url, guess))[0] == 401
        clock.now += 1
    status, _, headers = await call(url, guess)
    assert status == 429
    assert headers["Retry-After"] == "55"
    assert (await call(url, WRITE))[:2] == (200, "ops")  # no lock-out of the operator
    assert (await call(url, guess, source="127.0.0.2"))[0] == 401  # another address is fine
    clock.now += 55
    assert (await call(url, guess))[0] == 401


async def test_the_failure_book_stays_bounded(url: str, auth: BearerAuth) -> None:
    """With room for two addresses, a third failing one pushes the oldest out."""
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        await call(url, "guess-0123456789abcdefgh", source=source)
    assert list(auth.failures) == ["127.0.0.3", "127.0.0.4"]


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (None, "unknown"),
    ],
)
def test_ipv6_clients_are_throttled_by_their_64(remote: Any, key: str) -> None:
    """One host usually owns a whole /64, so its addresses share one failure count."""
    assert client_key(remote) == key


async def _proxied(auth: BearerAuth, source: str, forwarded: str, token: str) -> int:
    """Send one request from ``source`` with ``X-Forwarded-For: forwarded``; its status."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=auth.check(request, write=False))

    app = web.Application()
    app.router.add_get("/x", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded}
        connector = aiohttp.TCPConnector(local_addr=(source, 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(server.make_url("/x"), headers=headers) as response,
        ):
            return response.status


async def test_behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own(
    tokens: Tokens, clock: Clock
) -> None:
    """From a trusted proxy, X-Forwarded-For names the client: one guesser locks out no one."""
    auth = BearerAuth(tokens, clock, proxies=[ip_network("127.0.0.9/32")])
    guess = "guess-0123456789abcdefgh"
    for _ in range(6):
        await _proxied(auth, "127.0.0.9", "198.51.100.7", guess)
    assert await _proxied(auth, "127.0.0.9", "198.51.100.7", guess) == 429
    assert await _proxied(auth, "127.0.0.9", "203.0.113.5", guess) == 401  # another client
    assert await _proxied(auth, "127.0.0.9", "198.51.100.7", WRITE) == 200  # a valid token
    assert list(auth.failures) == ["198.51.100.7", "203.0.113.5"]


async def test_x_forwarded_for_from_an_untrusted_address_is_ignored(
    tokens: Tokens, clock: Clock
) -> None:
    """A client cannot pick its own identity: only trusted proxies' X-Forwarded-For counts."""
    auth = BearerAuth(tokens, clock, proxies=[ip_network("127.0.0.9/32")])
    for forwarded in ("198.51.100.1", "198.51.100.2", "127.0.0.9, 198.51.100.3"):
        await _proxied(auth, "127.0.0.8", forwarded, "guess-0123456789abcdefgh")
    assert list(auth.failures) == ["127.0.0.8"]
