"""The operator API under ``/api/v1``: incidents and maintenance windows, as JSON, by token.

Every endpoint here needs a bearer token, with one exception: ``GET /api/v1/incidents`` and
``GET /api/v1/incidents/{id}`` are shared with the public API. A request to them without an
``Authorization`` header gets the public view (``public_api``: published incidents, no reasons,
details or check ids) when the app serves a status board; one with the header goes through
the bearer check like any other (a bad token is a 401 and counts toward the 429). Writes and
``/api/v1/maintenance`` always need a token; without a token file every request that needs
one gets a 401 rather than the API being open. Errors are ``{"error": "…"}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from monitor.core import timebounds
from monitor.core.fields import ID_PATTERN, LANGUAGES, parse_delay
from monitor.core.words import Words
from monitor.domain.maintenance import Window, WindowProgress
from monitor.domain.operations import OperationError, Operations, OperatorAction
from monitor.web.auth import BearerAuth, client_key, json_error, unauthorized
from monitor.web.jsonbody import read_object
from monitor.web.public_api import OPERATOR_READS_KEY, OperatorReads, add_incident_reads
from monitor.web.views import (
    incident_json,
    update_json,
    window_json,
)

log = structlog.get_logger("forewarn.web.api")

MAX_MESSAGE = 5000
EXAMPLE_TIME = "2026-11-22T13:00:00+01:00"
DEFAULT_ANNOUNCE = "24h"  # as for windows written in checks.yaml


@dataclass(frozen=True, slots=True)
class OperatorApi:
    """What the operator endpoints work with."""

    operations: Operations
    auth: BearerAuth | None
    clock: Callable[[], float]


API_KEY: web.AppKey[OperatorApi] = web.AppKey("operator_api", OperatorApi)
Handler = Callable[[web.Request, OperatorApi, str], Awaitable[web.Response]]


def parse_time(value: Any, key: str) -> float:
    """An ISO 8601 time with an offset (or Z) as a Unix time; 400 otherwise."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise bad_request(
            f"{key}: expected an ISO 8601 time with an offset, such as {EXAMPLE_TIME}"
        )
    try:
        return timebounds.check_moment(moment).timestamp()
    except (ValueError, OverflowError):
        raise bad_request(f"{key}: must be {timebounds.SPAN_TEXT}") from None


def bad_request(message: str) -> web.HTTPException:
    return json_error(web.HTTPBadRequest, message)


def reply(data: Mapping[str, Any], status: int = 200) -> web.Response:
    """A JSON answer that no cache keeps."""
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})


def operator_endpoint(
    write: bool, action: str = ""
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.Response]]]:
    """Wrap a handler: token first, then the handler, with every error as JSON.

    A write by a known token is audit-logged whatever its outcome: one ``audit`` event with
    the token's name (never its value), ``action`` (formatted with the path's parts), the
    target's id and the status answered.
    """

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        @functools.wraps(handler)
        async def endpoint(request: web.Request) -> web.Response:
            api = request.app[API_KEY]
            if api.auth is None:
                raise unauthorized("the operator API is off: set daemon.api_tokens_file")
            name = api.auth.check(request, write=write)
            status = 500  # what an unexpected exception becomes
            try:
                response = await _answer(handler, request, api, name)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                if write:
                    _audit(request, name, action, status)

        return endpoint

    return wrap


async def _answer(
    handler: Handler, request: web.Request, api: OperatorApi, name: str
) -> web.Response:
    """The handler's response, with the daemon's refusals and an oversized body as JSON."""
    try:
        return await handler(request, api, name)
    except OperationError as exc:
        return reply({"error": exc.message}, exc.status)
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        return reply({"error": f"the body is larger than {limit} bytes"}, 413)


# Set by a handler whose target has no id in the path (aiohttp ≥ 3.12 has typed request keys).
AUDIT_TARGET: Any = (
    web.RequestKey("audit_target", str) if hasattr(web, "RequestKey") else "audit_target"
)


def _audit(request: web.Request, operator: str, action: str, status: int) -> None:
    """One ``audit`` event for a write: who, what, on what, and how it ended."""
    target = request.get(AUDIT_TARGET) or request.match_info.get("id", "")
    log.info(
        "audit",
        operator=operator,
        action=action.format_map(request.match_info)[:64],
        target=str(target)[:80],
        method=request.method,
        path=request.path[:200],
        status=status,
        client=client_key(request.remote),
    )


# Incidents.


@operator_endpoint(write=False)
async def list_incidents(request: web.Request, api: OperatorApi, _: str) -> web.Response:
    """Open incidents, newest first; ``?all=1`` adds recently resolved ones."""
    flag = request.query.get("all", "0").lower()
    if flag not in ("0", "1", "true", "false", "yes", "no", ""):
        raise bad_request("all: expected 1 or 0")
    incidents = api.operations.list_incidents(include_resolved=flag in ("1", "true", "yes"))
    return reply({"incidents": [incident_json(i) for i in incidents]})


@operator_endpoint(write=False)
async def show_incident(request: web.Request, api: OperatorApi, _: str) -> web.Response:
    """One incident with its customer-facing timeline."""
    incident_id = request.match_info["id"]
    incident = api.operations.incident(incident_id)
    timeline = [update_json(u) for u in api.operations.timeline(incident_id)]
    return reply({"incident": incident_json(incident), "timeline": timeline})


@operator_endpoint(write=True, action="incident.{action}")
async def act_on_incident(request: web.Request, api: OperatorApi, who: str) -> web.Response:
    """identify, update, resolve or postmortem: a message to the incident's customers."""
    try:
        action = OperatorAction(request.match_info["action"])
    except ValueError:
        raise json_error(web.HTTPNotFound, "unknown action") from None
    body = await read_object(request, {"message", "review", "force", "page_only"})
    message = words_of(body)
    flags = [body.get(k, False) for k in ("review", "force", "page_only")]
    if not all(isinstance(flag, bool) for flag in flags):
        raise bad_request("review, force and page_only: expected true or false")
    review, force, page_only = flags
    incident = api.operations.act(
        request.match_info["id"], action, message, review, force, page_only
    )
    log.info("operator_action", operator=who, action=action.value, incident=incident.id)
    return reply({"incident": incident_json(incident)})


def words_of(body: Mapping[str, Any]) -> Words:
    """The body's ``message``: one text, or one per language; 400 otherwise."""
    try:
        return Words.from_json(body.get("message"))
    except ValueError as exc:
        raise bad_request(str(exc)) from None


# Maintenance windows.


def _progress(api: OperatorApi, window: Window) -> WindowProgress | None:
    return next((p for w, p in api.operations.windows() if w.id == window.id), None)


@operator_endpoint(write=False)
async def list_windows(request: web.Request, api: OperatorApi, _: str) -> web.Response:
    """Every known maintenance window, by start."""
    return reply({"windows": [window_json(w, p) for w, p in api.operations.windows()]})


def _new_id(api: OperatorApi, start: float) -> str:
    """``mw-20261122-1200`` (UTC start), with a suffix if another window has it."""
    base = "mw-" + timebounds.moment(start).strftime("%Y%m%d-%H%M")
    taken = {w.id for w, _ in api.operations.windows()}
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _window(data: Mapping[str, Any], api: OperatorApi) -> Window:
    """The window a POST body describes; 400 for a field that is wrong on its own."""
    services = data.get("services")
    if not isinstance(services, list) or not services or not all(map(is_id, services)):
        raise bad_request("services: expected a non-empty list of service ids")
    start, end = parse_time(data.get("start"), "start"), parse_time(data.get("end"), "end")
    if end <= start:
        raise bad_request("end: must be after start")
    if end <= api.clock():
        raise bad_request("end: already in the past")
    try:
        announce = parse_delay(data.get("announce_before", DEFAULT_ANNOUNCE))
    except ValueError as exc:
        raise bad_request(f"announce_before: {exc}") from None
    summary = data.get("summary", {})
    if not isinstance(summary, dict) or not all(
        k in LANGUAGES and isinstance(v, str) and 0 < len(v.strip()) <= MAX_MESSAGE
        for k, v in summary.items()
    ):
        raise bad_request('summary: expected {"fr": "…", "en": "…"} with non-empty texts')
    window_id = data.get("id", _new_id(api, start))
    if not is_id(window_id):
        raise bad_request("id: expected a short lowercase id such as release-42")
    texts = {k: v.strip() for k, v in summary.items()}
    return Window(window_id, tuple(dict.fromkeys(services)), start, end, announce, texts)


def is_id(value: Any) -> bool:
    # Whole: re.match's $ also matches before a final newline ("release-42\n").
    return isinstance(value, str) and re.fullmatch(ID_PATTERN, value) is not None


@operator_endpoint(write=True, action="maintenance.add")
async def add_window(request: web.Request, api: OperatorApi, who: str) -> web.Response:
    """Plan a maintenance window; 201 with the window."""
    keys = {"id", "services", "start", "end", "announce_before", "summary"}
    wanted = _window(await read_object(request, keys), api)
    request[AUDIT_TARGET] = wanted.id
    window = api.operations.add_window(wanted)
    log.info("maintenance_added", operator=who, window=window.id)
    location = f"/api/v1/maintenance/{window.id}"
    response = reply({"window": window_json(window, _progress(api, window))}, 201)
    response.headers["Location"] = location
    return response


@operator_endpoint(write=True, action="maintenance.extend")
async def extend_window(request: web.Request, api: OperatorApi, who: str) -> web.Response:
    """Move a window's end."""
    end = parse_time((await read_object(request, {"end"})).get("end"), "end")
    if end <= api.clock():
        raise bad_request("end: already in the past")
    window = api.operations.extend_window(request.match_info["id"], end)
    log.info("maintenance_extended", operator=who, window=window.id)
    return reply({"window": window_json(window, _progress(api, window))})


@operator_endpoint(write=True, action="maintenance.cancel")
async def cancel_window(request: web.Request, api: OperatorApi, who: str) -> web.Response:
    """Cancel a window."""
    window = api.operations.cancel_window(request.match_info["id"])
    log.info("maintenance_cancelled", operator=who, window=window.id)
    return reply({"window": window_json(window, _progress(api, window))})


def add_api_routes(
    app: web.Application,
    operations: Operations,
    auth: BearerAuth | None,
    clock: Callable[[], float],
) -> None:
    """Serve the operator API on ``app``; ``auth`` None means every request gets a 401.

    The incident reads are routed with the public API's (``add_incident_reads``), which
    hands a request carrying ``Authorization`` to ``list_incidents`` and ``show_incident``.
    """
    app[API_KEY] = OperatorApi(operations, auth, clock)
    app[OPERATOR_READS_KEY] = OperatorReads(list_incidents, show_incident)
    add_incident_reads(app)
    app.router.add_post("/api/v1/incidents/{id}/{action}", act_on_incident)
    app.router.add_get("/api/v1/maintenance", list_windows)
    app.router.add_post("/api/v1/maintenance", add_window)
    app.router.add_post("/api/v1/maintenance/{id}/extend", extend_window)
    app.router.add_delete("/api/v1/maintenance/{id}", cancel_window)
