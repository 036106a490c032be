"""``/feed.atom``: incident entries and maintenance notices as an Atom 1.0 feed (RFC 4287).

One entry per public timeline entry of the listed incidents (open, and resolved within 14 days)
and one per maintenance step customers were told of. Entry ids are built from what does not
change (the incident id, the entry's kind and time; the window id and its step), so a feed
reader never sees an entry twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from lxml import etree

from monitor.core.render import format_time
from monitor.status.board import PublicIncident, PublicWindow, Snapshot
from monitor.status.words import entry_text, shown, status_word
from monitor.web.caching import rendered, respond, snapshot
from monitor.web.public_api import reader_language
from monitor.web.views import iso

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
MAX_ENTRIES = 100

FEED_TITLE = {"fr": "État des services", "en": "Service status"}
MAINTENANCE_WORDS = {
    "fr": {
        "announced": "Maintenance planifiée",
        "started": "Maintenance en cours",
        "ended": "Maintenance terminée",
        "cancelled": "Maintenance annulée",
    },
    "en": {
        "announced": "Maintenance scheduled",
        "started": "Maintenance started",
        "ended": "Maintenance completed",
        "cancelled": "Maintenance cancelled",
    },
}
WINDOW_TEXT = {"fr": "Fenêtre : du {start} au {end}.", "en": "Window: from {start} to {end}."}

# Characters XML 1.0 cannot carry at all: an operator's stray control character must not
# make the feed unserialisable for everyone.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry, in the reader's language."""

    id: str
    at: float
    title: str
    link: str
    text: str


def _names(board: Snapshot, service_ids: Sequence[str], language: str) -> str:
    """The services' names in ``language``, as a list for a title."""
    names = []
    for service_id in service_ids:
        service = board.service(service_id)
        names.append(service.names.get(language, service_id) if service else service_id)
    return ", ".join(names)


def incident_entries(board: Snapshot, incident: PublicIncident, language: str) -> Iterator[Entry]:
    """One entry per public timeline entry of ``incident``."""
    link = f"{board.public_url}/incidents/{incident.id}"
    names = _names(board, incident.services, language)
    seen: set[str] = set()
    for update in incident.updates:
        if not shown(update):
            continue
        # Kind and millisecond, not position: an entry written late with an earlier time
        # would shift every position after it.
        key = f"{update.kind}-{round(update.at * 1000)}"
        while key in seen:
            key += "+"
        seen.add(key)
        yield Entry(
            id=f"{link}#{key}",
            at=update.at,
            title=f"{names} — {status_word(update.status, language)}",
            link=link,
            text=entry_text(update, language),
        )


def window_entries(board: Snapshot, window: PublicWindow, language: str) -> Iterator[Entry]:
    """One entry per maintenance step customers were told of."""
    link = f"{board.public_url}/#maintenance-{window.id}"
    names = _names(board, window.services, language)
    when = partial(format_time, zone=board.zone, language=language)
    summary = window.summary.get(language) or next(iter(window.summary.values()), "")
    times = WINDOW_TEXT[language].format(start=when(window.start), end=when(window.end))
    progress = window.progress
    steps = (
        ("announced", progress.announced_at),
        ("started", progress.started_at),
        ("ended", progress.ended_at),
        ("cancelled", progress.cancelled_at),
    )
    for step, at in steps:
        if at is None:
            continue
        yield Entry(
            id=f"{link}/{step}",
            at=at,
            title=f"{names} — {MAINTENANCE_WORDS[language][step]}",
            link=link,
            text="\n".join(t for t in (summary, times) if t),
        )


def entries(board: Snapshot, language: str) -> list[Entry]:
    """Every entry of the feed, newest first, at most ``MAX_ENTRIES``."""
    found = [
        e for i in (*board.open, *board.resolved) for e in incident_entries(board, i, language)
    ]
    for window in (*board.maintenance, *board.past_maintenance):
        found.extend(window_entries(board, window, language))
    found.sort(key=lambda e: (e.at, e.id), reverse=True)
    return found[:MAX_ENTRIES]


def _add(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        element.text = _NOT_XML.sub("", text)
    return element


def render(board: Snapshot, language: str) -> bytes:
    """The feed as UTF-8 XML."""
    base = board.public_url
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    feed.set(XML_LANG, language)
    _add(feed, "id", f"{base}/feed.atom")
    _add(feed, "title", FEED_TITLE[language])
    _add(feed, "updated", iso(board.changed_at))
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/feed.atom")
    _add(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    brand, author = board.brand, _add(feed, "author")
    _add(author, "name", brand.title(language) or urlsplit(base).hostname or base)
    _add(author, "uri", brand.contact_url or f"{base}/")
    if brand.contact_email:
        _add(author, "email", brand.contact_email)
    if brand.logo:
        _add(feed, "logo", f"{base}/{brand.logo}")
    _add(feed, "generator", "forewarn")
    for item in entries(board, language):
        entry = _add(feed, "entry")
        _add(entry, "id", item.id)
        _add(entry, "title", item.title)
        _add(entry, "updated", iso(item.at))
        _add(entry, "published", iso(item.at))
        _add(entry, "link", rel="alternate", type="text/html", href=item.link)
        _add(entry, "content", item.text, type="text")
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8")


async def atom_feed(request: web.Request) -> web.Response:
    """``GET /feed.atom``, in the reader's language."""
    board = snapshot(request)
    language = reader_language(request, board)
    body = rendered(request, board, language, lambda: render(board, language))
    response = respond(request, body, CONTENT_TYPE, board.changed_at)
    response.headers[hdrs.CONTENT_LANGUAGE] = language
    return response


def add_feed_routes(app: web.Application) -> None:
    """Serve ``/feed.atom`` on ``app``; the board must be set under ``caching.BOARD_KEY``."""
    app.router.add_get("/feed.atom", atom_feed)
