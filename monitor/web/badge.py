"""``/badge/{service}.svg``: a shields-style badge of one service's state, for READMEs and wikis."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from aiohttp import web

from monitor.status.board import PublicState
from monitor.status.words import pick_language, state_word
from monitor.web.caching import respond, snapshot

COLOURS = {
    PublicState.OPERATIONAL: "#2e9e5b",
    PublicState.DEGRADED: "#c27c0e",
    PublicState.OUTAGE: "#d64545",
    PublicState.MAINTENANCE: "#2f6fb0",
    PublicState.UNKNOWN: "#7b8794",
}
_NARROW = set("fijlrtI.,:;!|'()[] ")
_WIDE = set("mwMW@%")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # no XML 1.0 document holds these
_PAD = 10


def _width(text: str) -> int:
    """Roughly how wide ``text`` is in 11 px Verdana; a badge needs no exact metrics."""
    total = 0.0
    for char in text:
        if char in _NARROW:
            total += 3.8
        elif char in _WIDE:
            total += 10.5
        elif char.isupper() or char.isdigit():
            total += 7.5
        else:
            total += 6.6
    return round(total)


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value), {'"': "&quot;"})


def render_badge(label: str, message: str, colour: str) -> str:
    """The SVG of a two-part badge: a grey label and a coloured message."""
    left, right = _width(label) + 2 * _PAD, _width(message) + 2 * _PAD
    total = left + right
    lx, mx = left / 2, left + right / 2
    label, message = _text(label), _text(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label}: {message}"><title>{label}: {message}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lx}" y="15" fill="#010101" fill-opacity=".3">{label}</text>'
        f'<text x="{lx}" y="14">{label}</text>'
        f'<text x="{mx}" y="15" fill="#010101" fill-opacity=".3">{message}</text>'
        f'<text x="{mx}" y="14">{message}</text></g></svg>'
    )


async def badge_handler(request: web.Request) -> web.Response:
    """A service's badge in the reader's language; 404 for a service the page does not show."""
    snap = snapshot(request)
    service = snap.service(request.match_info["service"])
    if service is None:
        return web.Response(status=404, text="Not found")
    language = pick_language(
        request.query.get("lang"), request.headers.get("Accept-Language"), snap.default_language
    )
    body = render_badge(
        service.names[language], state_word(service.state, language), COLOURS[service.state]
    )
    response = respond(request, body.encode(), "image/svg+xml; charset=utf-8", snap.changed_at)
    response.headers["Content-Language"] = language
    return response
