"""The public status page as a person sees it, served by the real app over a real SQLite store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urljoin

import lxml.html
import pytest
from aiohttp.test_utils import TestClient
from lxml.html import HtmlElement

from monitor.core.words import Words
from monitor.domain.incidents import IncidentUpdate
from monitor.domain.maintenance import WindowProgress
from monitor.status.board import DayCell
from monitor.store.base import Store
from monitor.store.sqlite import SqliteStore
from monitor.web import page_text
from tests.conftest import ConfigFactory
from tests.status_site import (
    NOW,
    OPEN,
    PARIS,
    RESOLVED,
    UPGRADE,
    World,
    outage_world,
    paris,
    quiet,
    renamed,
    seed,
    serve,
)

Client = TestClient[Any, Any]
PUBLIC = "https://status.example.net"
NBSP = "\u00a0"
VIEWPORT = "width=device-width, initial-scale=1"
SINCE_FR, SINCE_EN = "21/11/2026 à 11:29 (Europe/Paris)", "21 Nov 2026, 11:29 (Europe/Paris)"


STORE_ZONE = PARIS  # days are Paris days here, with their DST changes


@pytest.fixture
def store(store: Store) -> Store:
    """A store of each backend holding two incidents, their timelines and four days of results."""
    seed(store)
    return store


@pytest.fixture
def world(make_config: ConfigFactory) -> World:
    """Parcel tracking down with an open incident; labels up with an upgrade planned."""
    return outage_world(make_config())


@pytest.fixture
async def client(world: World, store: SqliteStore) -> AsyncIterator[Client]:
    """The daemon's app serving the status page of ``world``."""
    async with serve(world.board(store)) as http:
        yield http


async def fetch(client: Client, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and body text of one GET."""
    response = await client.get(path, headers=headers)
    return response.status, dict(response.headers), await response.text()


async def page(client: Client, path: str = "/", **headers: str) -> HtmlElement:
    """The parsed page at ``path``, which must answer 200."""
    status, _, body = await fetch(client, path, **headers)
    assert status == 200, body
    return lxml.html.fromstring(body)


def text(element: HtmlElement) -> str:
    """An element's visible text with line breaks and runs of spaces collapsed (not NBSP)."""
    return re.sub(r"[ \t\r\n]+", " ", element.text_content()).strip()


def one(element: HtmlElement, path: str) -> HtmlElement:
    """The element at ``path`` under ``element``, which must exist."""
    found = element.find(path)
    assert found is not None, path
    return found


def services(doc: HtmlElement) -> dict[str, HtmlElement]:
    """Each service's block on the page, by the name it shows."""
    return {text(one(li, "div/h3")): li for li in doc.find_class("service")}


async def test_each_service_shows_its_name_and_state_in_words_and_colour(client: Client) -> None:
    """Both languages name every service and say its state in words, with a state colour class."""
    for query, expected in (
        ("", {"Suivi de colis": f"Interrompu depuis le {SINCE_FR}", "Étiquettes": "Opérationnel"}),
        (
            "?lang=en",
            {"Parcel tracking": f"Outage since {SINCE_EN}", "Shipping labels": "Operational"},
        ),
    ):
        shown = services(await page(client, "/" + query))
        assert {name: text(s.find_class("state")[0]) for name, s in shown.items()} == expected
        colours = [s.find_class("state")[0].get("class") for s in shown.values()]
        assert colours == ["state st-outage", "state st-operational"]


async def test_each_bar_has_ninety_days_titled_with_date_availability_and_incidents(
    client: Client,
) -> None:
    """90 cells per service, oldest first, each titled; an outage day is red, a quiet one green."""
    shown = services(await page(client))
    cells = {name: block.find_class("day") for name, block in shown.items()}
    assert {name: len(days) for name, days in cells.items()} == {
        "Suivi de colis": 90,
        "Étiquettes": 90,
    }
    assert all(cell.get("title") for days in cells.values() for cell in days)
    labels = [(c.get("title"), c.get("class")) for c in cells["Étiquettes"]]
    assert labels[0] == ("24 août 2026 · pas de données", "day d-none")
    assert labels[-4:-1] == [
        (f"18 nov. 2026 · 75,00{NBSP}% · 1 incident", "day d-bad"),
        (f"19 nov. 2026 · 99,95{NBSP}%", "day d-ok"),
        (f"20 nov. 2026 · 99,00{NBSP}%", "day d-minor"),
    ]
    today = cells["Suivi de colis"][-1]
    assert (today.get("title"), today.get("class")) == (
        f"21 nov. 2026 · 50,00{NBSP}% · 1 incident",
        "day d-bad",
    )
    english = services(await page(client, "/?lang=en"))["Parcel tracking"].find_class("day")
    assert [english[0].get("title"), english[-1].get("title")] == [
        "24 Aug 2026 · no data",
        "21 Nov 2026 · 50.00% · 1 incident",
    ]


@pytest.mark.parametrize(
    ("ratio", "incidents", "title", "colour"),
    [
        (1.0, (), f"100,00{NBSP}%", "d-ok"),
        (0.99996, (), f"99,99{NBSP}%", "d-ok"),  # never rounded up to a perfect day
        (0.999, (), f"99,90{NBSP}%", "d-ok"),
        (0.995, (), f"99,50{NBSP}%", "d-minor"),
        (0.96, (), f"96,00{NBSP}%", "d-major"),
        (0.5, (), f"50,00{NBSP}%", "d-bad"),
        # A day customers heard of an outage is never green, but a blip is no red day.
        (0.9995, ("a",), f"99,95{NBSP}% · 1 incident", "d-minor"),
        (0.986, ("a",), f"98,60{NBSP}% · 1 incident", "d-major"),  # 20 minutes down
        (0.5, ("a",), f"50,00{NBSP}% · 1 incident", "d-bad"),
        (None, ("a", "b"), "pas de données · 2 incidents", "d-minor"),
        (None, (), "pas de données", "d-none"),
    ],
)
def test_a_day_is_titled_and_coloured_by_its_availability_and_incidents(
    ratio: float | None, incidents: tuple[str, ...], title: str, colour: str
) -> None:
    """Thresholds at 99.9, 99 and 95 %; a day an incident touched is at least yellow."""
    cell = DayCell(date(2026, 11, 21), ratio, incidents)
    assert (page_text.day_title(cell, "fr"), page_text.day_class(cell)) == (
        f"21 nov. 2026 · {title}",
        colour,
    )


async def test_each_service_shows_its_ninety_day_uptime(client: Client) -> None:
    """The uptime figure is the service's availability over the days shown, to two decimals."""
    shown = services(await page(client))
    uptime = {name: text(block.find_class("uptime")[0]) for name, block in shown.items()}
    # tracking: 20 of 30 results succeeded; labels: 2101 of 2104.
    assert uptime["Suivi de colis"].startswith(f"66,66{NBSP}%")
    assert uptime["Étiquettes"].startswith(f"99,85{NBSP}%")


def _running_upgrade(world: World) -> World:
    return quiet(world, windows=[replace(UPGRADE, start=NOW - 600, end=NOW + 600)])


@pytest.mark.parametrize(
    ("change", "banner", "css"),
    [
        (lambda w: w, "Certains services sont perturbés", "b-outage"),
        (quiet, "Tous les services sont opérationnels", "b-ok"),
        (_running_upgrade, "Maintenance en cours", "b-maintenance"),
    ],
)
async def test_banner_sums_up_every_service(
    world: World, store: SqliteStore, change: Callable[[World], World], banner: str, css: str
) -> None:
    """The banner says an outage, all operational, or maintenance, in words and colour."""
    async with serve(change(world).board(store)) as http:
        shown = (await page(http)).find_class("banner")
    assert [(text(b), b.get("class")) for b in shown] == [(banner, f"banner {css}")]


async def test_running_maintenance_puts_its_services_in_maintenance(
    world: World, store: SqliteStore
) -> None:
    """A running window shows as running, and its service's state says maintenance."""
    async with serve(_running_upgrade(world).board(store)) as http:
        doc = await page(http)
    window = doc.find_class("window")[0]
    assert text(window).startswith("Étiquettes En cours")
    assert text(services(doc)["Étiquettes"].find_class("state")[0]).startswith("En maintenance")


async def test_maintenance_of_the_last_days_is_listed_as_completed(
    world: World, store: SqliteStore
) -> None:
    """A window that ran yesterday moves from the maintenance section to the recent history."""
    ran = replace(UPGRADE, start=paris(20, 22), end=paris(20, 23))
    told = WindowProgress(ran.id, started_at=ran.start, ended_at=paris(20, 22, 40))
    world.windows, world.progress = [ran], {ran.id: told}
    async with serve(world.board(store)) as http:
        doc = await page(http)
    assert doc.find_class("maintenance") == []
    (window,) = doc.find_class("window")
    assert text(window).startswith("Étiquettes Terminée · du 20/11/2026 à 22:00")
    section = window.getparent()
    assert section is not None
    assert text(one(section, "h2")) == "Maintenances des 14 derniers jours"


async def test_open_incident_lists_the_latest_operator_message_first(client: Client) -> None:
    """Newest entry first, in the snapshot's zone, status in words; cadence entries are left out."""
    incident = (await page(client)).find_class("incidents")[0].find_class("incident")[0]
    assert text(incident).startswith("Suivi de colis Cause identifiée")
    entries = incident.find_class("timeline")[0].findall("li")
    assert [text(e) for e in entries] == [
        "21/11/2026 à 11:45 (Europe/Paris) · Cause identifiée "
        "Le transporteur redémarre son API. Prochain point à 13 h.",
        "21/11/2026 à 11:30 (Europe/Paris) · Analyse en cours "
        "Nous avons détecté une interruption et l'analysons.",
    ]
    assert len(entries[0].findall(".//br")) == 1  # the operator's line break is kept


async def test_maintenance_shows_its_summary_in_the_readers_language(client: Client) -> None:
    """An upcoming window shows its services, its span and its summary, in fr and in en."""
    french = (await page(client)).find_class("window")[0]
    assert text(french) == (
        "Étiquettes Prévue · du 22/11/2026 à 22:00 (Europe/Paris) au 22/11/2026 à 23:30 "
        "(Europe/Paris) Mise à jour du serveur d'étiquettes"
    )
    english = (await page(client, "/?lang=en")).find_class("window")[0]
    assert text(english).startswith("Shipping labels Scheduled · from 22 Nov 2026, 22:00")
    assert text(english).endswith("Label server upgrade")


async def test_maintenance_summary_falls_back_to_the_language_it_has(
    world: World, store: SqliteStore
) -> None:
    """A summary written only in French still shows on the English page."""
    world.windows = [replace(UPGRADE, summary={"fr": "Migration du stockage"})]
    async with serve(world.board(store)) as http:
        window = (await page(http, "/?lang=en")).find_class("window")[0]
    assert text(window).endswith("Migration du stockage")


async def test_resolved_incident_shows_its_duration_and_postmortem_paragraphs(
    client: Client,
) -> None:
    """A recent resolved incident lists its outage's length and its report, one <p> a paragraph."""
    history = (await page(client)).find_class("history")[0]
    (incident,) = history.find_class("incident")
    assert text(incident).startswith("Étiquettes Résolu")
    facts = dict(zip(incident.findall(".//dt"), incident.findall(".//dd"), strict=True))
    assert {text(k): text(v) for k, v in facts.items()}["Durée"] == "47 min"
    paragraphs = incident.find_class("postmortem")[0].findall("p")
    assert [text(p) for p in paragraphs] == [
        "Un certificat a expiré.",
        "Nous surveillons désormais son échéance.",
    ]


@pytest.mark.parametrize(
    ("query", "accept", "language", "title"),
    [
        ("?lang=en", "fr", "en", "Service status"),
        ("", "en-GB,en;q=0.9", "en", "Service status"),
        ("", "", "fr", "État des services"),
        ("?lang=de", "en;q=0.5, de", "en", "Service status"),
        ("?lang=fr", "en", "fr", "État des services"),
    ],
)
async def test_language_follows_the_query_then_accept_language_then_the_default(
    client: Client, query: str, accept: str, language: str, title: str
) -> None:
    """?lang= beats Accept-Language, which beats the default; <html lang> and the header agree."""
    headers = {"Accept-Language": accept} if accept else {}
    status, sent, body = await fetch(client, "/" + query, **headers)
    doc = lxml.html.fromstring(body)
    assert (status, doc.get("lang"), sent["Content-Language"]) == (200, language, language)
    assert text(one(doc, ".//h1")) == title


async def test_language_switch_leads_to_the_other_language(client: Client) -> None:
    """The French page links to English and back, keeping the page."""
    (link,) = (await page(client, "/status")).find_class("languages")[0].findall("a")
    assert (text(link), link.get("hreflang")) == ("English", "en")
    english = await page(client, urljoin("/status", link.get("href", "")))
    assert english.get("lang") == "en"
    (back,) = english.find_class("languages")[0].findall("a")
    assert text(back) == "Français"


async def test_a_client_with_the_current_etag_gets_304(client: Client) -> None:
    """Revalidating with the page's ETag answers 304 without a body."""
    first = await client.get("/")
    assert first.status == 200
    again = await client.get("/", headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status, await again.read()) == (304, b"")


async def test_last_modified_follows_the_latest_measurement(
    world: World, store: SqliteStore
) -> None:
    """The page shows availability, so a result newer than any state change dates the page."""
    async with serve(quiet(world).board(store)) as http:
        status, headers, _ = await fetch(http, "/")
    # Services up since 11:00; the last result was taken at 11:00:19, Paris time.
    assert (status, headers["Last-Modified"]) == (200, "Sat, 21 Nov 2026 10:00:19 GMT")


async def test_pages_carry_no_script_and_no_inline_style(client: Client) -> None:
    """The CSP forbids scripts and inline styles, so no page relies on either."""
    for path in ("/", "/status?lang=en", f"/incidents/{OPEN.id}", "/incidents/nope"):
        _, headers, body = await fetch(client, path)
        assert "<script" not in body and " style=" not in body and "<style" not in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]


async def test_service_names_and_operator_messages_are_escaped(
    world: World, store: SqliteStore
) -> None:
    """Markup in a service name or an operator's message shows as text, never as markup."""
    world.config = renamed(world.config, "tracking", {"fr": "<script>alert(1)</script>"})
    hostile = IncidentUpdate(
        OPEN.id, paris(21, 11, 58), "identified", "update", Words(every="<script>2</script>")
    )
    store.commit(updates=[hostile])
    async with serve(world.board(store)) as http:
        _, _, body = await fetch(http, "/")
    assert "<script" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;script&gt;2&lt;/script&gt;" in body


async def test_incident_page_shows_one_incident_with_its_timeline(client: Client) -> None:
    """The home page links to each incident's own page, which has its timeline and canonical URL."""
    home = await page(client, "/?lang=en")
    link = one(home.find_class("incidents")[0], ".//h3/a")
    assert text(link) == "Parcel tracking"
    doc = await page(client, urljoin("/", link.get("href", "")))
    assert "Le transporteur redémarre son API." in text(doc)
    canonical = one(doc, ".//link[@rel='canonical']")
    assert canonical.get("href") == f"{PUBLIC}/incidents/{OPEN.id}?lang=en"
    resolved = await page(client, f"/incidents/{RESOLVED.id}")
    assert "Nous surveillons désormais son échéance." in text(resolved)
    assert len(resolved.find_class("timeline")[0].findall("li")) == 3


async def test_an_unknown_incident_gets_a_404_page(client: Client) -> None:
    """An id the snapshot does not list answers a localized 404 page that says nothing more."""
    status, headers, body = await fetch(client, "/incidents/tracking-ws?lang=en")
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert "This incident does not exist" in body
    assert "tracking-ws" not in body and 'http-equiv="refresh"' not in body


async def test_nothing_outside_the_snapshot_reaches_the_page(client: Client) -> None:
    """No check id, reason, detail or probe URL; every absolute link is under public_url."""
    for path in ("/", f"/incidents/{OPEN.id}", f"/incidents/{RESOLVED.id}"):
        _, _, body = await fetch(client, path)
        for secret in ("tracking-ws", "labels-ws", "10.0.0.7", "http_status", "tls_expired"):
            assert secret not in body
        assert "127.0.0.1" not in body
        assert all(u.startswith(PUBLIC + "/") for u in re.findall(r"https?://[^\"'\s<]+", body))
    doc = await page(client)
    links = {(e.get("rel"), e.get("type")): e.get("href") for e in doc.iter("link")}
    assert links[("canonical", None)] == f"{PUBLIC}/?lang=fr"
    assert links[("alternate", "application/atom+xml")] == f"{PUBLIC}/feed.atom"
    assert f"{PUBLIC}/api/v1/status" in [a.get("href") for a in doc.iter("a")]


@pytest.mark.parametrize(
    ("query", "refresh"),
    [
        ("", None),
        ("?refresh=0", None),
        ("?refresh=soon", None),
        ("?refresh=120", "120"),
        ("?refresh=5", "30"),
        ("?refresh=999999", "3600"),
    ],
)
async def test_page_reloads_itself_only_when_asked_within_bounds(
    client: Client, query: str, refresh: str | None
) -> None:
    """No timed reload by default (it moves a screen reader's focus); ?refresh= opts in, bounded."""
    doc = await page(client, "/" + query)
    metas = [m.get("content") for m in doc.iter("meta") if m.get("http-equiv") == "refresh"]
    assert metas == ([refresh] if refresh else [])


async def test_the_footer_refresh_link_keeps_the_language_and_an_asked_reload_can_stop(
    client: Client,
) -> None:
    """Refresh reloads the same page in the same language; a wall display's reload turns off."""
    english = await page(client, "/?lang=en")
    (again,) = [a for a in english.iter("a") if text(a) == "Refresh"]
    assert again.get("href") == "?lang=en"
    wall = await page(client, "/?refresh=60")
    (off,) = [a for a in wall.iter("a") if text(a) == "Désactiver l'actualisation automatique"]
    still = await page(client, urljoin("/", off.get("href", "")))
    switch = one(still, ".//nav[@class='languages']/a").get("href", "")
    english = await page(client, urljoin("/", switch))
    assert english.get("lang") == "en"
    assert [m for m in english.iter("meta") if m.get("http-equiv") == "refresh"] == []


async def test_stylesheet_is_served_and_keeps_thirty_days_on_phones(client: Client) -> None:
    """Both pages' relative stylesheet links resolve; on narrow screens 60 of 90 cells hide."""
    hrefs = set()
    for path in ("/", f"/incidents/{OPEN.id}"):
        doc = await page(client, path)
        assert one(doc, ".//meta[@name='viewport']").get("content") == VIEWPORT
        hrefs.add(urljoin(path, one(doc, ".//link[@rel='stylesheet']").get("href", "")))
    (href,) = hrefs
    response = await client.get(href)
    css = await response.text()
    assert (response.status, response.content_type) == (200, "text/css")
    assert "max-age=604800" in response.headers["Cache-Control"]
    narrow = css[css.index("@media (max-width: 600px)") :]
    assert ".day:nth-child(-n+60) { display: none; }" in narrow


async def test_each_uptime_names_the_days_it_was_measured_over(client: Client) -> None:
    """Not "over 90 days" with 3 days of data; the phone's 30-day bar has its own figure."""
    for query, name, words in (
        ("", "Étiquettes", "de disponibilité sur 3 jours"),
        ("?lang=en", "Shipping labels", "uptime over 3 days"),
    ):
        shown = services(await page(client, "/" + query))
        legend = shown[name].find_class("uptime")[0]
        wide, narrow = (text(legend.find_class(side)[0]) for side in ("wide", "narrow"))
        assert wide.endswith(words) and narrow.endswith(words)
        assert "90" not in wide


def test_refresh_values_fall_on_a_few_steps() -> None:
    """Any asked refresh lands on one of a handful of values: a bounded number of renders."""
    from monitor.web.status import REFRESH_STEPS, refresh_of

    seen = {refresh_of(str(n)) for n in range(-5, 5000)} | {refresh_of("9" * 5000)}
    assert seen <= {0, *REFRESH_STEPS} and len(seen) <= len(REFRESH_STEPS) + 1
    assert refresh_of("120") == 120 and refresh_of("299") == 120
