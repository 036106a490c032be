"""``/api/v1/suppressions``: the addresses that get no email, and lifting one (operators)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from monitor.domain.operations import Suppression
from monitor.web.api import AUDIT_TARGET, OperatorApi, operator_endpoint, reply
from monitor.web.auth import json_error
from monitor.web.jsonbody import read_object
from monitor.web.views import iso


def suppression_json(item: Suppression) -> dict[str, Any]:
    """One suppressed address as JSON."""
    return {"address": item.address, "reason": item.reason, "since": iso(item.since),
            "customers": list(item.customers)}  # fmt: skip


@operator_endpoint(write=False)
async def list_suppressions(request: web.Request, api: OperatorApi, _: str) -> web.Response:
    """Unsubscribed and bounced addresses, newest first."""
    return reply({"suppressions": [suppression_json(s) for s in api.operations.suppressions()]})


@operator_endpoint(write=True, action="suppression.lift")
async def lift_suppression(request: web.Request, api: OperatorApi, who: str) -> web.Response:
    """Email an address again (after its owner asked to be told once more)."""
    address = (await read_object(request, {"address"})).get("address")
    if not isinstance(address, str) or "@" not in address:
        raise json_error(web.HTTPBadRequest, "address: expected an email address")
    lifted = api.operations.lift(address)
    # Logs name customers by id, never by address: the address stays out of the path too.
    request[AUDIT_TARGET] = ",".join(lifted.customers) or "(no configured customer)"
    return reply({"lifted": suppression_json(lifted)})


def add_suppression_routes(app: web.Application) -> None:
    """Serve the suppression list on ``app``, which ``add_api_routes`` set up."""
    app.router.add_get("/api/v1/suppressions", list_suppressions)
    app.router.add_post("/api/v1/suppressions/lift", lift_suppression)
