"""The public JSON API: overall status, 90 days of history and incidents, for anyone, no token.

Everything is drawn from the board's ``Snapshot``, which holds only allowlisted fields, and
goes out through ``caching.respond`` (ETag, Last-Modified, 304, CORS). ``/api/v1/incidents``
and ``/api/v1/incidents/{id}`` are shared with the operator API: a request that carries an
``Authorization`` header gets the operator's view (or its 401), one without gets this one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from monitor.core.fields import LANGUAGES
from monitor.domain.incidents import IncidentUpdate
from monitor.status.board import PublicIncident, PublicState, PublicWindow, ServiceStatus, Snapshot
from monitor.status.words import entry_text, pick_language, shown
from monitor.web.caching import BOARD_KEY, rendered, respond, snapshot
from monitor.web.views import iso

Endpoint = Callable[[web.Request], Awaitable[web.Response]]

STATUS_PATH = "/api/v1/status"
HISTORY_PATH = "/api/v1/status/history"
INCIDENTS_PATH = "/api/v1/incidents"
INCIDENT_PATH = "/api/v1/incidents/{id}"
JSON_TYPE = "application/json; charset=utf-8"

# Worst first: the page's overall status is that of its worst service.
_SEVERITY = (PublicState.OUTAGE, PublicState.DEGRADED, PublicState.MAINTENANCE)


def reader_language(request: web.Request, board: Snapshot) -> str:
    """``?lang=``, else the best of Accept-Language, else the configured default."""
    return pick_language(
        request.query.get("lang"), request.headers.get(hdrs.ACCEPT_LANGUAGE), board.default_language
    )


def percent(ratio: float | None) -> float | None:
    """A ratio as a percentage to three decimals; None stays None."""
    return None if ratio is None else round(ratio * 100, 3)


def overall(services: Sequence[ServiceStatus]) -> str:
    """The page's one-word status; services still awaiting a first result do not count."""
    states = {s.state for s in services}
    worst = next((s for s in _SEVERITY if s in states), PublicState.OPERATIONAL)
    return worst.value


def _when(at: float | None) -> str | None:
    return None if at is None else iso(at)


def _texts(texts: Mapping[str, str]) -> dict[str, str]:
    """Every language's text, borrowing another language's where one is missing."""
    fallback = next((t for t in texts.values() if t), "")
    return {lang: texts.get(lang) or fallback for lang in sorted(LANGUAGES)}


def service_json(service: ServiceStatus) -> dict[str, Any]:
    """One service's current state and 90-day availability."""
    return {
        "id": service.id,
        "name": _texts(service.names),
        "state": service.state.value,
        "since": _when(service.since),  # None until its first result
        "uptime_90d": percent(service.uptime),
        "uptime_days": service.measured_days,  # what uptime_90d spans: fewer when young
    }


def history_json(service: ServiceStatus) -> dict[str, Any]:
    """One service's 90 local days, oldest first."""
    days = [
        {
            "date": cell.day.isoformat(),
            "availability": percent(cell.availability),
            "incidents": list(cell.incidents),
        }
        for cell in service.days
    ]
    return {**service_json(service), "days": days}


def window_json(window: PublicWindow) -> dict[str, Any]:
    """A running or upcoming maintenance window."""
    if window.running:
        state = "in_progress"
    else:
        state = "announced" if window.progress.announced_at is not None else "scheduled"
    return {
        "id": window.id,
        "services": list(window.services),
        "start": iso(window.start),
        "end": iso(window.end),
        "summary": _texts(window.summary),
        "state": state,
    }


def update_json(update: IncidentUpdate, language: str) -> dict[str, Any]:
    """One public timeline entry, with its text in ``language``."""
    return {
        "at": iso(update.at),
        "status": update.status,
        "kind": update.kind,
        "text": entry_text(update, language),
        "message": update.message.text(language),
    }


def incident_json(incident: PublicIncident, language: str) -> dict[str, Any]:
    """An incident in its public shape: the allowlisted fields and its public entries."""
    return {
        "id": incident.id,
        "service_id": incident.services[0],  # covered services: never empty, the root first
        "services": list(incident.services),
        "status": incident.status,
        "opened_at": iso(incident.opened_at),
        "first_failure_at": iso(incident.first_failure_at),
        "recovered_at": _when(incident.recovered_at),
        "resolved_at": _when(incident.resolved_at),
        "next_update_at": _when(incident.next_update_at),
        "message": incident.message.text(language),
        "postmortem": incident.postmortem.text(language),
        "updates": [update_json(u, language) for u in incident.updates if shown(u)],
    }


def _page(board: Snapshot) -> dict[str, Any]:
    # No generation time: it would change the body, and so the ETag, on every rebuild,
    # and pollers would never get a 304.
    return {"url": f"{board.public_url}/", "updated_at": iso(board.changed_at)}


def _company(board: Snapshot) -> dict[str, Any]:
    """Who runs the page, as ``status_page:`` says; null where it does not."""
    brand = board.brand
    return {
        "title": dict(brand.titles) or None,
        "logo_url": f"{board.public_url}/{brand.logo}" if brand.logo else None,
        "contact_url": brand.contact_url or None,
        "contact_email": brand.contact_email or None,
    }


def status_json(board: Snapshot, language: str) -> dict[str, Any]:
    """The whole page at a glance: overall status, services, open incidents, maintenance."""
    return {
        "page": {**_page(board), **_company(board)},
        "status": overall(board.services),
        "services": [service_json(s) for s in board.services],
        "incidents": [incident_json(i, language) for i in board.open],
        "maintenance": [window_json(w) for w in board.maintenance],
    }


def _encode(data: Mapping[str, Any]) -> bytes:
    """Always the same bytes for the same data, so equal documents share an ETag."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _measured(board: Snapshot) -> float:
    """When figures last moved: availability changes with each result, not only with events."""
    return max(board.changed_at, board.measured_at or 0.0)


def _answer(
    request: web.Request,
    board: Snapshot,
    document: Callable[[], Mapping[str, Any]],
    modified: float,
    language: str | None,
) -> web.Response:
    """``document`` through the caching rules; ``language`` None: the same for every reader.

    The document is made once per snapshot and URL (``caching.rendered``).
    """
    body = rendered(request, board, language or "", lambda: _encode(document()))
    response = respond(request, body, JSON_TYPE, modified)
    if language is None:
        del response.headers[hdrs.VARY]
    else:
        response.headers[hdrs.CONTENT_LANGUAGE] = language
    return response


def _shared(response: web.Response) -> web.Response:
    # The same URL answers operators differently: a cache must not hand this to them.
    response.headers[hdrs.VARY] = "Accept-Language, Authorization"
    return response


async def status(request: web.Request) -> web.Response:
    """``GET /api/v1/status``."""
    board = snapshot(request)
    language = reader_language(request, board)
    return _answer(request, board, lambda: status_json(board, language), _measured(board), language)


async def status_history(request: web.Request) -> web.Response:
    """``GET /api/v1/status/history``: each service's 90 days, for people drawing their bars."""
    board = snapshot(request)

    def document() -> dict[str, Any]:
        return {
            "page": _page(board),
            "timezone": board.zone.key,
            "services": [history_json(s) for s in board.services],
        }

    return _answer(request, board, document, _measured(board), None)


async def public_incidents(request: web.Request) -> web.Response:
    """Open incidents, newest first, then those resolved within 14 days, newest first."""
    board = snapshot(request)
    language = reader_language(request, board)

    def listed() -> dict[str, Any]:
        return {"incidents": [incident_json(i, language) for i in (*board.open, *board.resolved)]}

    return _shared(_answer(request, board, listed, board.changed_at, language))


async def public_incident(request: web.Request) -> web.Response:
    """One listed incident with its public timeline; 404 for any other id."""
    board = snapshot(request)
    incident_id = request.match_info["id"]
    incident = board.incident(incident_id)
    if incident is None:
        # One answer for unknown, unpublished and long-resolved ids: existence is not leaked.
        error = {"error": f"no public incident {incident_id[:100]!r}"}
        headers = {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}
        return _shared(web.json_response(error, status=404, headers=headers))
    language = reader_language(request, board)
    found = incident

    def document() -> dict[str, Any]:
        return {"incident": incident_json(found, language)}

    return _shared(_answer(request, board, document, board.changed_at, language))


@dataclass(frozen=True, slots=True)
class OperatorReads:
    """The operator API's handlers for the shared incident paths."""

    incidents: Endpoint
    incident: Endpoint


OPERATOR_READS_KEY: web.AppKey[OperatorReads] = web.AppKey("operator_reads", OperatorReads)


def _operator(request: web.Request) -> OperatorReads | None:
    """The operator handlers, when this request is theirs."""
    operator = request.app.get(OPERATOR_READS_KEY)
    if operator is None:
        return None
    # Any Authorization header asks for the operator view: a bad token is its 401 (and
    # counts toward the slow-down), never a quiet fallback to the public view. Without a
    # board there is no public view to give, and the operator API's 401 stands.
    if hdrs.AUTHORIZATION in request.headers or BOARD_KEY not in request.app:
        return operator
    return None


async def incidents_endpoint(request: web.Request) -> web.Response:
    """``GET /api/v1/incidents``: the operator view for a token, else the public one."""
    operator = _operator(request)
    return await (operator.incidents if operator else public_incidents)(request)


async def incident_endpoint(request: web.Request) -> web.Response:
    """``GET /api/v1/incidents/{id}``: the operator view for a token, else the public one."""
    operator = _operator(request)
    return await (operator.incident if operator else public_incident)(request)


def add_incident_reads(app: web.Application) -> None:
    """Route the shared incident paths once, whichever of the two APIs is added first."""
    if any(r.canonical == INCIDENTS_PATH for r in app.router.resources()):
        return
    app.router.add_get(INCIDENTS_PATH, incidents_endpoint)
    app.router.add_get(INCIDENT_PATH, incident_endpoint)


def add_public_api_routes(app: web.Application) -> None:
    """Serve the public API on ``app``; the board must be set under ``caching.BOARD_KEY``."""
    app.router.add_get(STATUS_PATH, status)
    app.router.add_get(HISTORY_PATH, status_history)
    add_incident_reads(app)
