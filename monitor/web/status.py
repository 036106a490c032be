"""The public status page: ``/``, ``/status``, ``/incidents/{id}``, its stylesheet and badges.

Pages are drawn from the board's ``Snapshot`` only, so nothing private can reach them. They
carry no script and no inline style (the CSP forbids both) and work without JavaScript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from monitor.core.fields import LANGUAGES
from monitor.core.render import format_duration, format_time
from monitor.core.timebounds import clamp, moment
from monitor.core.words import Words
from monitor.domain.incidents import IncidentUpdate
from monitor.status.board import PublicIncident, PublicState, PublicWindow, Snapshot
from monitor.status.words import entry_text, pick_language, shown, state_word, status_word
from monitor.web import page_text
from monitor.web.badge import badge_handler
from monitor.web.caching import BOARD_KEY, etag_of, rendered, respond, snapshot
from monitor.web.logo import add_logo_route

TEMPLATES = Path(__file__).parent.parent / "templates" / "status"
STYLESHEET = Path(__file__).parent / "static" / "status.css"
# No timed reload unless asked for (?refresh=60, for a wall display): a reload moves a
# screen reader's place and focus (WCAG 2.2.1); the footer has a Refresh link instead.
REFRESH_S = 0
REFRESH_BOUNDS = (30, 3600)
REFRESH_STEPS = (30, 60, 120, 300, 600, 900, 1800, 3600)
STATIC_MAX_AGE_S = 7 * 86400  # the stylesheet's URL changes with its content

_BANNERS = (
    (PublicState.OUTAGE, "b-outage", "affected"),
    (PublicState.DEGRADED, "b-degraded", "affected"),
    (PublicState.MAINTENANCE, "b-maintenance", "maintenance_now"),
    (PublicState.UNKNOWN, "b-unknown", "awaiting"),
)


@dataclass(frozen=True, slots=True)
class _Stylesheet:
    """The stylesheet, read once when the routes are added."""

    body: bytes
    modified: float
    version: str  # a hash of the bytes, put in the page's link to it


_CSS_KEY: web.AppKey[_Stylesheet] = web.AppKey("status_css", _Stylesheet)


def paragraphs(text: str) -> Markup:
    """Escaped text as paragraphs: blank lines split them, single line breaks are kept."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.splitlines()))
        for b in blocks
    )


def _environment() -> Environment:
    # Not sandboxed: these templates ship with forewarn, operators do not edit them.
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    return env


_ENV = _environment()


def refresh_of(raw: str | None) -> int:
    """Seconds between automatic reloads from ``?refresh=``: 0 (off) or a step of the ladder.

    The asked value is held within the bounds and rounded down to a step of ``REFRESH_STEPS``,
    so that a client cannot make one page into thousands of distinct renders.
    """
    try:
        asked = int(raw) if raw is not None and len(raw) <= 12 else REFRESH_S
    except ValueError:
        return REFRESH_S
    if asked == 0:
        return 0
    if asked < 0:
        return REFRESH_S
    low, high = REFRESH_BOUNDS
    held = min(max(asked, low), high)
    return max(step for step in REFRESH_STEPS if step <= held)


@dataclass(frozen=True, slots=True)
class Page:
    """One rendering: the snapshot, the reader's language, and how the page links to itself."""

    snap: Snapshot
    language: str
    refresh: int
    chosen: bool  # the reader asked for the language with ?lang=, so links keep it
    root: str  # the way back to the site's root, relative, so a path prefix keeps working
    path: str  # this page's path under public_url, for canonical links; "" when it has none
    css: str  # the stylesheet's version, so it may be cached for long

    @property
    def t(self) -> dict[str, str]:
        """The page's labels in the reader's language."""
        return page_text.LABELS[self.language]

    @property
    def title(self) -> str:
        """The company's title for its page, else "Service status" in the reader's words."""
        return self.snap.brand.title(self.language) or self.t["title"]

    @property
    def base(self) -> str:
        """The public URL, without a trailing slash."""
        return self.snap.public_url.rstrip("/")

    def query(self, language: str | None = None, refresh: int | None = None) -> str:
        """The query string that keeps the reader's choices, optionally changing one."""
        params: dict[str, str | int] = {}
        if language is not None or self.chosen:
            params["lang"] = language or self.language
        wanted = self.refresh if refresh is None else refresh
        if wanted != REFRESH_S:
            params["refresh"] = wanted
        return "?" + urlencode(params) if params else ""

    def other_languages(self) -> list[str]:
        """The languages the reader may switch to."""
        return [language for language in LANGUAGES if language != self.language]

    def canonical(self, language: str) -> str:
        """This page's absolute address in ``language``."""
        return f"{self.base}{self.path}?lang={language}"

    def when(self, at: float) -> str:
        """A time in the snapshot's zone, as the reader writes it."""
        return format_time(at, zone=self.snap.zone, language=self.language)

    def iso(self, at: float) -> str:
        """A time for ``<time datetime>``."""
        return moment(int(clamp(at))).strftime("%Y-%m-%dT%H:%M:%SZ")

    def state(self, state: PublicState) -> str:
        """A service state in words."""
        return state_word(state, self.language)

    def status(self, status: str) -> str:
        """An incident status in words."""
        return status_word(status, self.language)

    def names(self, service_ids: tuple[str, ...]) -> str:
        """Public names of services, joined; services no longer configured are left out."""
        found = (self.snap.service(s) for s in service_ids)
        return ", ".join(s.names[self.language] for s in found if s is not None)

    def entries(self, incident: PublicIncident) -> list[IncidentUpdate]:
        """An incident's timeline entries worth a line, newest first."""
        return [u for u in reversed(incident.updates) if shown(u)]

    def entry(self, update: IncidentUpdate) -> str:
        """What one timeline entry says."""
        return entry_text(update, self.language)

    def said(self, words: Words) -> str:
        """An operator's words in the reader's language, else in the one they were given in."""
        return words.text(self.language)

    def summary(self, window: PublicWindow) -> str:
        """A maintenance summary in the reader's language, else in any it has."""
        return window.summary.get(self.language) or next(iter(window.summary.values()), "")

    def duration(self, incident: PublicIncident) -> str:
        """How long the measured outage lasted."""
        end = incident.recovered_at or incident.resolved_at or self.snap.generated_at
        return format_duration(end - incident.first_failure_at, self.language)

    def span(self, start: float, end: float) -> str:
        """``from … to …`` in the reader's words."""
        return self.t["from_to"].format(start=self.when(start), end=self.when(end))

    def window_word(self, window: PublicWindow) -> str:
        """Where a maintenance window stands, in words."""
        if window.cancelled:
            return self.t["cancelled"]
        if window.running:
            return self.t["running"]
        if window.progress.ended_at is not None or window.end <= self.snap.generated_at:
            return self.t["done"]
        return self.t["upcoming"]

    def banner(self) -> tuple[str, str]:
        """The overall state: a colour class and its words."""
        states = {s.state for s in self.snap.services}
        if self.snap.open and not states & {PublicState.OUTAGE, PublicState.DEGRADED}:
            states.add(PublicState.DEGRADED)  # an incident is open while its checks recover
        for state, css_class, key in _BANNERS:
            if state in states:
                return css_class, self.t[key]
        return "b-ok", self.t["all_ok"]

    def updated(self) -> float:
        """When anything shown last changed: the page's Last-Modified."""
        return max(self.snap.changed_at, self.snap.measured_at or 0.0)


def _page(request: web.Request, snap: Snapshot, *, root: str, path: str) -> Page:
    asked = request.query.get("lang")
    language = pick_language(asked, request.headers.get("Accept-Language"), snap.default_language)
    return Page(
        snap=snap,
        language=language,
        refresh=refresh_of(request.query.get("refresh")),
        chosen=asked in LANGUAGES,
        root=root,
        path=path,
        css=request.app[_CSS_KEY].version,
    )


def _render(name: str, page: Page, **extra: Any) -> bytes:
    return (
        _ENV.get_template(name).render(page=page, t=page.t, page_text=page_text, **extra).encode()
    )


def _html(request: web.Request, page: Page, name: str, **extra: Any) -> web.Response:
    variant = (page.language, page.chosen, page.refresh)
    body = rendered(request, page.snap, variant, lambda: _render(name, page, **extra))
    response = respond(request, body, "text/html; charset=utf-8", page.updated())
    response.headers["Content-Language"] = page.language
    return response


async def status_page(request: web.Request) -> web.Response:
    """The status page: banner, services with their 90 days, incidents and maintenance."""
    page = _page(request, snapshot(request), root="./", path="/")
    return _html(request, page, "index.html")


async def incident_page(request: web.Request) -> web.Response:
    """One listed incident with its whole timeline; 404 for any other id."""
    snap = snapshot(request)
    incident_id = request.match_info["incident_id"]
    incident = snap.incident(incident_id)
    if incident is None:
        # Nothing will appear at this address by waiting, so the 404 does not reload itself.
        page = replace(_page(request, snap, root="../", path=""), refresh=0)
        # One render per language and snapshot, whatever ids a client makes up.
        variant = ("not_found", page.language, page.chosen)
        body = request.app[BOARD_KEY].rendered(
            snap, variant, lambda: _render("not_found.html", page)
        )
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Language": page.language}
        return web.Response(status=404, body=body, headers=headers)
    page = _page(request, snap, root="../", path=f"/incidents/{quote(incident.id, safe='')}")
    return _html(request, page, "incident.html", incident=incident)


async def stylesheet(request: web.Request) -> web.Response:
    """The page's stylesheet; its URL carries a version, so browsers may keep it a week."""
    css = request.app[_CSS_KEY]
    response = respond(request, css.body, "text/css; charset=utf-8", css.modified, cors=False)
    response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE_S}"
    del response.headers["Vary"]  # the same bytes for every language
    return response


# A plain dot, so browsers asking for an icon get one instead of a 404.
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="7" fill="#1f7a3f"/></svg>'
)


async def favicon(request: web.Request) -> web.Response:
    """The site icon."""
    return respond(request, FAVICON, "image/svg+xml", 0, cors=False)


def add_status_routes(app: web.Application) -> None:
    """Serve the status page, incident pages, the stylesheet and badges; needs ``BOARD_KEY``."""
    body = STYLESHEET.read_bytes()
    app[_CSS_KEY] = _Stylesheet(body, STYLESHEET.stat().st_mtime, etag_of(body).strip('"')[:12])
    app.router.add_get("/", status_page)
    app.router.add_get("/status", status_page)
    app.router.add_get("/incidents/{incident_id}", incident_page)
    app.router.add_get("/static/status.css", stylesheet)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/badge/{service}.svg", badge_handler)
    add_logo_route(app)
