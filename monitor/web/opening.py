"""``POST /api/v1/incidents``: an operator opens an incident no probe found."""

from __future__ import annotations

from aiohttp import web

from monitor.web.api import (
    AUDIT_TARGET,
    OperatorApi,
    bad_request,
    is_id,
    log,
    operator_endpoint,
    parse_time,
    reply,
    words_of,
)
from monitor.web.jsonbody import read_object
from monitor.web.views import incident_json


@operator_endpoint(write=True, action="incident.open")
async def open_incident(request: web.Request, api: OperatorApi, who: str) -> web.Response:
    """Open an incident reported outside forewarn; 201, its customers told at once."""
    body = await read_object(request, {"services", "message", "since"})
    services = body.get("services")
    if not isinstance(services, list) or not services or not all(map(is_id, services)):
        raise bad_request("services: expected a non-empty list of service ids")
    message = words_of(body)
    since = parse_time(body["since"], "since") if "since" in body else None
    if since is not None and since > api.clock():
        raise bad_request("since: the outage cannot start in the future")
    incident = api.operations.open_incident(tuple(dict.fromkeys(services)), message, since)
    request[AUDIT_TARGET] = incident.id
    log.info("operator_action", operator=who, action="open", incident=incident.id)
    response = reply({"incident": incident_json(incident)}, 201)
    response.headers["Location"] = f"/api/v1/incidents/{incident.id}"
    return response


def add_opening_routes(app: web.Application) -> None:
    """Serve incident opening on ``app``, which ``add_api_routes`` set up."""
    app.router.add_post("/api/v1/incidents", open_incident)
