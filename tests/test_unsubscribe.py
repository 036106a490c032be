"""Unsubscribe tokens, their key file, and the routes against a real app and SQLite store."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from probe_servers import serve

from monitor.notices.unsubscribe import KEY_FILE, UnsubscribeSigner, unsubscribe_url
from monitor.store.sqlite import SqliteStore
from monitor.web.unsubscribe import add_unsubscribe_routes, choose_language, mask_address

NOW = 1_790_000_000.0
ADDRESS = "ops@acme.example"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass(frozen=True)
class Site:
    """The running app: its base URL, signer and store, and an HTTP client."""

    url: str
    signer: UnsubscribeSigner
    store: SqliteStore
    database: Path
    http: aiohttp.ClientSession

    def link(self, address: str) -> str:
        """The unsubscribe URL this site would put in an email to ``address``."""
        return unsubscribe_url(self.url, self.signer.token(address))


@pytest.fixture
async def site(sqlite_store: SqliteStore) -> AsyncIterator[Site]:
    """The unsubscribe routes served on 127.0.0.1 with a fixed clock; a test reads the db."""
    store = sqlite_store
    signer = UnsubscribeSigner(b"k" * 32)
    app = web.Application()
    add_unsubscribe_routes(app, signer, store, lambda: NOW)
    async with serve(app) as url, aiohttp.ClientSession() as http:
        yield Site(url, signer, store, store.path, http)


def test_token_round_trips_to_the_lowercased_address() -> None:
    """A token is URL-safe and verifies back to its address, whatever the address's case."""
    signer = UnsubscribeSigner(b"k" * 32)
    token = signer.token("Ops@ACME.example")
    assert token.replace("-", "").replace("_", "").replace(".", "").isalnum()
    assert "=" not in token
    assert token == signer.token(ADDRESS)
    assert signer.address(token) == ADDRESS


def test_tampered_forged_or_malformed_tokens_verify_to_nothing() -> None:
    """Changing either half, another key's token, or garbage: None, never an address."""
    signer = UnsubscribeSigner(b"k" * 32)
    token = signer.token(ADDRESS)
    payload, _, mac = token.partition(".")
    other_payload = signer.token("ceo@acme.example").partition(".")[0]
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    forged = [
        f"{payload}.{flipped}",
        f"{other_payload}.{mac}",
        UnsubscribeSigner(b"x" * 32).token(ADDRESS),
        signer.token("OPS@acme.example").upper(),
        "",
        payload,
        f"{token}.{mac}",
        f"{payload}=.{mac}",
        "!!!.???",
        "A" * 5000 + "." + mac,
    ]
    assert [signer.address(bad) for bad in forged] == [None] * len(forged)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    """The first start writes a 0600 random key; later starts read it, so old links work."""
    state = tmp_path / "state"
    first = UnsubscribeSigner.from_state_dir(state)
    key = state / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    second = UnsubscribeSigner.from_state_dir(state)
    assert second.address(first.token(ADDRESS)) == ADDRESS
    assert [p.name for p in state.iterdir()] == [KEY_FILE]  # no temporary file left behind


def test_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    """A key already on disk (another instance won the race) is the one used."""
    (tmp_path / KEY_FILE).write_bytes(b"s" * 32)
    signer = UnsubscribeSigner.from_state_dir(tmp_path)
    assert signer.token(ADDRESS) == UnsubscribeSigner(b"s" * 32).token(ADDRESS)
    assert (tmp_path / KEY_FILE).read_bytes() == b"s" * 32


def test_unsubscribe_url_joins_public_url_and_token() -> None:
    """The link is under /unsubscribe/ of the public URL, with or without a trailing slash."""
    assert unsubscribe_url("https://s.example/", "a.b") == "https://s.example/unsubscribe/a.b"
    assert unsubscribe_url("https://s.example", "a.b") == "https://s.example/unsubscribe/a.b"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("", "fr"),
        ("en", "en"),
        ("en-GB,en;q=0.9,fr;q=0.5", "en"),
        ("de-DE,en;q=0.5", "en"),
        ("en;q=0.4,fr-CA;q=0.8", "fr"),
        ("*", "fr"),
        ("en;q=0", "fr"),
        ("en;q=high", "fr"),
    ],
)
def test_page_language_follows_accept_language(header: str, language: str) -> None:
    """The most preferred of French and English wins; French when neither is asked for."""
    assert choose_language(header) == language


def test_address_is_masked_on_pages() -> None:
    """Only the first character of the local part shows."""
    assert mask_address(ADDRESS) == "o***@acme.example"
    assert mask_address("no-at-sign") == "n***"


async def test_get_shows_a_confirm_form_and_does_not_unsubscribe(site: Site) -> None:
    """A link scanner's GET gets a form to submit, never an unsubscription."""
    async with site.http.get(site.link(ADDRESS)) as response:
        body = await response.text()
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
    assert '<form method="post">' in body
    assert '<html lang="fr">' in body
    assert "o***@acme.example" in body and ADDRESS not in body
    assert "<script" not in body and "style" not in body
    assert site.store.suppressed([ADDRESS]) == set()


async def test_get_speaks_english_when_the_browser_prefers_it(site: Site) -> None:
    """Accept-Language picks the page's language."""
    headers = {"Accept-Language": "en-US,en;q=0.9"}
    async with site.http.get(site.link(ADDRESS), headers=headers) as response:
        body = await response.text()
    assert '<html lang="en">' in body and "Unsubscribe me" in body


async def test_one_click_post_suppresses_the_address_idempotently(site: Site) -> None:
    """RFC 8058's POST unsubscribes; doing it again changes nothing and still succeeds."""
    for _ in range(2):
        async with site.http.post(site.link(ADDRESS), data=ONE_CLICK) as response:
            body = await response.text()
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
        assert "o***@acme.example" in body
    assert site.store.suppressed(["OPS@acme.example", "ceo@acme.example"]) == {"OPS@acme.example"}
    with closing(sqlite3.connect(site.database)) as db:
        rows = db.execute("SELECT reason, at FROM suppressions").fetchall()
    assert rows == [("unsubscribed", NOW)]


async def test_browser_form_post_without_body_also_unsubscribes(site: Site) -> None:
    """The confirm page's button works even if a client sends no body."""
    async with site.http.post(site.link(ADDRESS)) as response:
        assert response.status == 200
    assert site.store.suppressed([ADDRESS]) == {ADDRESS}


async def test_forged_token_is_the_same_404_for_get_and_post(site: Site) -> None:
    """An unknown or tampered token is refused alike by both methods, suppressing nothing."""
    forged = UnsubscribeSigner(b"x" * 32).token(ADDRESS)
    answers = []
    for token in (forged, "not-a-token"):
        url = f"{site.url}/unsubscribe/{token}"
        for method in ("GET", "POST"):
            async with site.http.request(method, url, data=ONE_CLICK) as response:
                answers.append((response.status, await response.text()))
    assert {status for status, _ in answers} == {404}
    assert len({body for _, body in answers}) == 1
    assert "acme" not in answers[0][1] and "not valid" in answers[0][1]
    assert site.store.suppressed([ADDRESS]) == set()


async def test_address_with_crlf_and_markup_stays_inert(site: Site) -> None:
    """A hostile address verifies to itself, is escaped on the page and adds no header."""
    hostile = "ops\r\nset-cookie: a=b@evil.example@<b>acme</b>.example"
    assert site.signer.address(site.signer.token(hostile)) == hostile
    async with site.http.get(site.link(hostile)) as response:
        body = await response.text()
        assert "Set-Cookie" not in response.headers
    assert "&lt;b&gt;acme&lt;/b&gt;.example" in body and "<b>" not in body
    async with site.http.post(site.link(hostile), data=ONE_CLICK) as response:
        assert response.status == 200
    assert site.store.suppressed([hostile, ADDRESS]) == {hostile}
