"""Service badges: valid SVG naming the service and its state, from the real app and store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from monitor.status.board import PublicState
from monitor.store.base import Store
from monitor.store.sqlite import SqliteStore
from monitor.web.badge import COLOURS, render_badge
from tests.conftest import ConfigFactory
from tests.status_site import PARIS, World, outage_world, renamed, seed, serve

Client = TestClient[Any, Any]
SVG = "{http://www.w3.org/2000/svg}"


STORE_ZONE = PARIS  # days are Paris days here, with their DST changes


@pytest.fixture
def store(store: Store) -> Store:
    """A store of each backend holding two incidents, their timelines and four days of results."""
    seed(store)
    return store


@pytest.fixture
def world(make_config: ConfigFactory) -> World:
    """Parcel tracking down, labels up."""
    return outage_world(make_config())


@pytest.fixture
async def client(world: World, store: SqliteStore) -> AsyncIterator[Client]:
    """The daemon's app with the status routes."""
    async with serve(world.board(store)) as http:
        yield http


def parsed(body: bytes) -> etree._Element:
    """The badge as an XML tree; raises if it is not well-formed."""
    return etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))


def words(svg: etree._Element) -> list[str]:
    """The distinct texts a reader sees on the badge, left to right."""
    seen: list[str] = []
    for node in svg.iter(f"{SVG}text"):
        if node.text not in seen:
            seen.append(node.text or "")
    return seen


def fill(svg: etree._Element) -> str:
    """The message half's background colour."""
    rects = [r for r in svg.iter(f"{SVG}rect") if r.get("x")]
    return rects[0].get("fill", "")


async def test_badge_is_svg_naming_the_service_and_its_state(client: Client) -> None:
    """The badge parses as SVG, reads "Suivi de colis | Interrompu", and is painted red."""
    response = await client.get("/badge/tracking.svg")
    body = await response.read()
    assert (response.status, response.content_type) == (200, "image/svg+xml")
    svg = parsed(body)
    assert svg.tag == f"{SVG}svg"
    assert words(svg) == ["Suivi de colis", "Interrompu"]
    assert fill(svg) == COLOURS[PublicState.OUTAGE]


@pytest.mark.parametrize(
    ("query", "accept"), [("?lang=en", "fr"), ("", "en-GB,en;q=0.9")], ids=["query", "header"]
)
async def test_badge_speaks_the_readers_language(client: Client, query: str, accept: str) -> None:
    """?lang= or Accept-Language picks the language of both the name and the state word."""
    response = await client.get(f"/badge/tracking.svg{query}", headers={"Accept-Language": accept})
    assert words(parsed(await response.read())) == ["Parcel tracking", "Outage"]
    assert response.headers["Content-Language"] == "en"


async def test_badge_colour_follows_the_state(client: Client) -> None:
    """An operational service's badge is green and says so."""
    svg = parsed(await (await client.get("/badge/labels.svg")).read())
    assert (words(svg), fill(svg)) == (
        ["Étiquettes", "Opérationnel"],
        COLOURS[PublicState.OPERATIONAL],
    )


@pytest.mark.parametrize("name", ["tracking-ws", "nope", "TRACKING"])
async def test_unknown_service_gets_a_plain_404(client: Client, name: str) -> None:
    """A name that is no public service (a check id included) answers a bare 404."""
    response = await client.get(f"/badge/{name}.svg")
    assert (response.status, await response.text()) == (404, "Not found")


async def test_badge_escapes_a_hostile_service_name(world: World, store: SqliteStore) -> None:
    """Markup, ampersands and quotes in a name stay text, and the badge stays well-formed."""
    hostile = 'Suivi <script>&"colis"\x01'
    world.config = renamed(world.config, "tracking", {"fr": hostile})
    async with serve(world.board(store)) as http:
        body = await (await http.get("/badge/tracking.svg")).read()
    svg = parsed(body)
    assert words(svg)[0] == 'Suivi <script>&"colis"'
    assert svg.get("aria-label") == 'Suivi <script>&"colis": Interrompu'
    assert b"<script" not in body


async def test_badge_revalidates_with_304_dated_by_the_last_change(client: Client) -> None:
    """The badge's Last-Modified is the last state change; its ETag gets a 304."""
    first = await client.get("/badge/tracking.svg")
    # The open incident's latest entry, 11:55 Paris, is the snapshot's latest change.
    assert first.headers["Last-Modified"] == "Sat, 21 Nov 2026 10:55:00 GMT"
    again = await client.get(
        "/badge/tracking.svg", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert (again.status, await again.read()) == (304, b"")


def test_longer_words_make_a_wider_badge() -> None:
    """Each half grows with its text, so long French state words are not clipped."""
    short = parsed(render_badge("API", "OK", "#000").encode())
    long = parsed(render_badge("Suivi de colis", "En attente de mesures", "#000").encode())
    assert int(long.get("width", "0")) > int(short.get("width", "0")) + 150
