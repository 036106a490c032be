"""Unsubscribe links: ``GET /unsubscribe/{token}`` asks, ``POST`` (RFC 8058 one-click) acts.

A GET never unsubscribes: mail scanners and link previews fetch every URL in a message, so
only a POST — the customer's button or their mail client's one-click request — does. A bad
token gets the same 404 whatever it looks like and whichever method, so a probe learns
nothing. Pages are plain HTML without scripts or inline styles, which the CSP would block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from aiohttp import web

from monitor.core.fields import LANGUAGES
from monitor.core.notice import one_line
from monitor.notices.unsubscribe import UnsubscribeSigner
from monitor.store.base import Store

DEFAULT_LANGUAGE = "fr"
REASON = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Unsubscriptions:
    """What the unsubscribe routes need: token checks, the suppression list and the time."""

    signer: UnsubscribeSigner
    store: Store
    clock: Callable[[], float]
    told: Callable[[str, float], None] | None = None  # the daemon logs it and tells ops


UNSUBSCRIBE_KEY: web.AppKey[Unsubscriptions] = web.AppKey("unsubscribe", Unsubscriptions)

_TEXTS = {
    "fr": {
        "confirm_title": "Se désabonner",
        "confirm": "Ne plus recevoir nos avis d'incident et de maintenance à l'adresse {address} ?",
        "button": "Me désabonner",
        "done_title": "Désabonnement effectué",
        "done": "L'adresse {address} ne recevra plus nos avis d'incident et de maintenance.",
    },
    "en": {
        "confirm_title": "Unsubscribe",
        "confirm": "Stop receiving our incident and maintenance notices at {address}?",
        "button": "Unsubscribe me",
        "done_title": "You are unsubscribed",
        "done": "{address} will no longer receive our incident and maintenance notices.",
    },
}
_INVALID = (
    "<h1>Lien non valide</h1>\n<p>Ce lien de désabonnement n'est pas valide.</p>\n"
    '<h1 lang="en">Invalid link</h1>\n<p lang="en">This unsubscribe link is not valid.</p>'
)


def choose_language(accept_language: str) -> str:
    """The supported language the ``Accept-Language`` header prefers most, else French."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for item in accept_language.split(","):
        tag, _, params = item.partition(";")
        primary = tag.strip().lower().partition("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Strictly greater: on a tie the language listed first wins, as the client meant.
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def mask_address(address: str) -> str:
    """Enough of the address to recognise it, not enough to harvest it: ``o***@acme.example``."""
    local, at, domain = one_line(address).rpartition("@")
    if not at:
        return f"{domain[:1]}***"
    return f"{local[:1]}***@{domain}"


def _page(status: int, language: str, title: str, body: str) -> web.Response:
    """A complete HTML page; ``body`` is already escaped HTML."""
    html = (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title></head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return web.Response(
        status=status,
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def _invalid() -> web.Response:
    return _page(404, "fr", "Lien non valide / Invalid link", _INVALID)


def _verified(request: web.Request) -> tuple[Unsubscriptions, str | None, str]:
    """The app's parts, the token's address (None when forged) and the reader's language."""
    parts = request.app[UNSUBSCRIBE_KEY]
    address = parts.signer.address(request.match_info["token"])
    return parts, address, choose_language(request.headers.get("Accept-Language", ""))


def _sentence(template: str, address: str) -> str:
    """``template`` as HTML with the masked address in bold, every part escaped."""
    masked = f"<strong>{escape(mask_address(address))}</strong>"
    return escape(template).replace("{address}", masked)


async def confirm_handler(request: web.Request) -> web.Response:
    """Ask before unsubscribing: a one-button form posting back to the same URL."""
    _, address, language = _verified(request)
    if address is None:
        return _invalid()
    texts = _TEXTS[language]
    body = (
        f"<h1>{escape(texts['confirm_title'])}</h1>\n"
        f"<p>{_sentence(texts['confirm'], address)}</p>\n"
        '<form method="post">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{escape(texts["button"])}</button></form>'
    )
    return _page(200, language, texts["confirm_title"], body)


async def unsubscribe_handler(request: web.Request) -> web.Response:
    """Suppress the token's address: a mail client's one-click POST or the confirm button."""
    parts, address, language = _verified(request)
    if address is None:
        return _invalid()
    # The body is not required: RFC 8058 clients send List-Unsubscribe=One-Click, but not all
    # in the same encoding, and the signed token alone proves the link was ours.
    at = parts.clock()
    parts.store.suppress(address, REASON, at)
    if parts.told is not None:
        parts.told(address, at)
    texts = _TEXTS[language]
    body = f"<h1>{escape(texts['done_title'])}</h1>\n<p>{_sentence(texts['done'], address)}</p>"
    return _page(200, language, texts["done_title"], body)


def add_unsubscribe_routes(
    app: web.Application,
    signer: UnsubscribeSigner,
    store: Store,
    clock: Callable[[], float],
    told: Callable[[str, float], None] | None = None,
) -> None:
    """Serve the unsubscribe links signed by ``signer`` on ``app``, suppressing in ``store``.

    ``told(address, at)`` hears of each unsubscription once it is stored.
    """
    app[UNSUBSCRIBE_KEY] = Unsubscriptions(signer, store, clock, told)
    app.router.add_get("/unsubscribe/{token}", confirm_handler)
    app.router.add_post("/unsubscribe/{token}", unsubscribe_handler)
