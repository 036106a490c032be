"""``/feed.atom`` over real HTTP, parsed with lxml: Atom's required parts, stable ids, languages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from monitor.core.words import Words
from monitor.domain.incidents import ChangeKind, IncidentUpdate
from monitor.web.feed import MAX_ENTRIES
from tests.conftest import ConfigFactory
from tests.public_scene import (
    BLIP_ID,
    IDENTIFIED,
    MAINTENANCE,
    NOW,
    OPEN_ID,
    RESOLVED_ID,
    UPDATE,
    Scene,
    public_scene,
)

NS = {"a": "http://www.w3.org/2005/Atom"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
BASE = "https://status.example.net"


@pytest.fixture
async def scene(make_config: ConfigFactory, tmp_path: Path) -> AsyncIterator[Scene]:
    """The seeded story served with the feed."""
    async with public_scene(make_config(extra=MAINTENANCE), tmp_path) as served:
        yield served


async def fetch(scene: Scene, query: str = "", **headers: str) -> etree._Element:
    """GET the feed and parse it, after checking it is a 200 Atom answer."""
    response = await scene.client.get(f"/feed.atom{query}", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    return etree.fromstring(await response.read())


def texts(feed: etree._Element, path: str) -> list[str]:
    """The text of every element at ``path`` (Atom namespace prefix ``a:``)."""
    return [e.text or "" for e in feed.xpath(path, namespaces=NS)]


def child(element: etree._Element, tag: str) -> etree._Element:
    """``element``'s Atom child ``tag``, which must exist."""
    found = element.find(f"a:{tag}", NS)
    assert found is not None, tag
    return found


def entry_by_content(feed: etree._Element, content: str) -> etree._Element:
    """The one entry whose content is ``content``."""
    [entry] = [
        e for e in feed.iterfind("a:entry", NS) if e.findtext("a:content", None, NS) == content
    ]
    return entry


async def test_the_feed_is_atom_with_every_required_element(scene: Scene) -> None:
    """The feed has id, title, updated, author and a self link; each entry its own five."""
    feed = await fetch(scene)
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    assert texts(feed, "a:id") == [f"{BASE}/feed.atom"]
    assert texts(feed, "a:title") == ["État des services"]
    assert texts(feed, "a:updated") == ["2026-11-22T11:55:00Z"]
    assert texts(feed, "a:author/a:name") == ["status.example.net"]
    assert feed.xpath("a:link[@rel='self']/@href", namespaces=NS) == [f"{BASE}/feed.atom"]
    assert feed.xpath("a:link[@rel='alternate']/@href", namespaces=NS) == [f"{BASE}/"]
    entries = feed.findall("a:entry", NS)
    assert len(entries) == 11
    for entry in entries:
        for tag in ("id", "title", "updated", "published", "content"):
            assert entry.findtext(f"a:{tag}", None, NS), tag
        assert str(child(entry, "link").get("href")).startswith(f"{BASE}/")
        assert child(entry, "content").get("type") == "text"


async def test_entry_ids_are_unique_and_stable_across_requests(scene: Scene) -> None:
    """A rebuilt snapshot gives the same ids; a new entry adds its id without moving the others."""
    before = texts(await fetch(scene), "a:entry/a:id")
    assert len(set(before)) == len(before)
    scene.clock.now += 5  # past the board's cache: a fresh snapshot
    assert texts(await fetch(scene), "a:entry/a:id") == before
    news = IncidentUpdate(
        OPEN_ID, NOW + 1, "identified", ChangeKind.UPDATE, Words(every="Almost there.")
    )
    scene.store.commit(updates=[news])
    scene.board.invalidate()
    after = texts(await fetch(scene), "a:entry/a:id")
    assert after[1:] == before
    assert after[0] == f"{BASE}/incidents/{OPEN_ID}#update-{round((NOW + 1) * 1000)}"


async def test_operator_messages_resolutions_and_maintenance_have_entries(scene: Scene) -> None:
    """An operator's update, a resolution and a maintenance start each read as an entry."""
    feed = await fetch(scene)
    update = entry_by_content(feed, UPDATE)
    assert update.findtext("a:title", None, NS) == "Suivi de colis — Cause identifiée"
    assert update.findtext("a:updated", None, NS) == "2026-11-22T11:55:00Z"
    assert child(update, "link").get("href") == f"{BASE}/incidents/{OPEN_ID}"
    resolution = entry_by_content(feed, "L'incident est résolu.")
    assert resolution.findtext("a:title", None, NS) == "Étiquettes, Suivi de colis — Résolu"
    assert child(resolution, "link").get("href") == f"{BASE}/incidents/{RESOLVED_ID}"
    [start] = feed.xpath(
        "a:entry[a:id = $id]", namespaces=NS, id=f"{BASE}/#maintenance-labels-upgrade/started"
    )
    assert start.findtext("a:title", None, NS) == "Étiquettes — Maintenance en cours"
    assert start.findtext("a:content", None, NS) == (
        "Mise à jour de la plateforme d'étiquettes.\n"
        "Fenêtre : du 22/11/2026 à 12:50 (Europe/Paris) au 22/11/2026 à 14:00 (Europe/Paris)."
    )
    assert start.findtext("a:published", None, NS) == "2026-11-22T11:50:00Z"


async def test_silent_entries_and_untold_incidents_stay_out(scene: Scene) -> None:
    """Announced and no-news cadence entries, and the never-told blip, have no entry."""
    feed = await fetch(scene)
    ids = texts(feed, "a:entry/a:id")
    assert not [i for i in ids if "#announced-" in i or BLIP_ID in i]
    mine = [i for i in ids if OPEN_ID in i]
    assert [i.split("#")[1].split("-")[0] for i in mine] == ["update", "identified", "opened"]


async def test_entries_are_newest_first(scene: Scene) -> None:
    """Entries are ordered by time, the latest on top."""
    updated = texts(await fetch(scene), "a:entry/a:updated")
    assert updated == sorted(updated, reverse=True)
    assert updated[0] == "2026-11-22T11:55:00Z"


async def test_lang_wins_over_accept_language_which_wins_over_the_default(scene: Scene) -> None:
    """?lang=en gives English even to a French browser; a header alone decides otherwise."""
    english = await fetch(scene, "?lang=en", **{"Accept-Language": "fr"})
    assert english.get(XML_LANG) == "en"
    assert texts(english, "a:title") == ["Service status"]
    assert "Parcel tracking — Identified" in texts(english, "a:entry/a:title")
    by_header = await fetch(scene, **{"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert by_header.get(XML_LANG) == "en"
    default = await fetch(scene, "?lang=de")
    assert default.get(XML_LANG) == "fr"
    assert texts(default, "a:title") == ["État des services"]


async def test_a_message_with_markup_is_escaped_text(scene: Scene) -> None:
    """``<b>`` and ``&`` in an operator's message are characters, not markup."""
    response = await scene.client.get("/feed.atom")
    raw = await response.read()
    assert b"The carrier's &lt;b&gt;database&lt;/b&gt; &amp; its standby" in raw
    entry = entry_by_content(etree.fromstring(raw), IDENTIFIED)
    assert len(child(entry, "content")) == 0  # no element inside: the tags stayed text


async def test_control_characters_in_a_message_do_not_break_the_feed(scene: Scene) -> None:
    """Characters XML cannot carry are dropped instead of failing the whole feed."""
    bell = IncidentUpdate(
        OPEN_ID, NOW + 1, "identified", ChangeKind.UPDATE, Words(every="ring\x07 \x00done")
    )
    scene.store.commit(updates=[bell])
    scene.board.invalidate()
    feed = await fetch(scene)
    assert texts(feed, "a:entry[1]/a:content") == ["ring done"]


async def test_the_feed_keeps_the_newest_hundred_entries(scene: Scene) -> None:
    """A long incident is cut to the latest MAX_ENTRIES entries."""
    many = [
        IncidentUpdate(OPEN_ID, NOW + n, "identified", ChangeKind.UPDATE, Words(every=f"Step {n}."))
        for n in range(1, 151)
    ]
    scene.store.commit(updates=many)
    scene.board.invalidate()
    contents = texts(await fetch(scene), "a:entry/a:content")
    assert len(contents) == MAX_ENTRIES
    assert (contents[0], contents[-1]) == ("Step 150.", "Step 51.")


async def test_an_unchanged_feed_is_a_304(scene: Scene) -> None:
    """If-None-Match, or If-Modified-Since alone, get a bodiless 304; a stale tag gets the feed."""
    first = await scene.client.get("/feed.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    matched = await scene.client.get("/feed.atom", headers={"If-None-Match": etag})
    assert matched.status == 304 and await matched.read() == b""
    since = await scene.client.get("/feed.atom", headers={"If-Modified-Since": modified})
    assert since.status == 304
    stale = await scene.client.get("/feed.atom", headers={"If-None-Match": '"old"'})
    assert stale.status == 200
    other_language = await scene.client.get("/feed.atom?lang=en", headers={"If-None-Match": etag})
    assert other_language.status == 200  # another representation, another tag
