"""The operator API over real HTTP on 127.0.0.1, against an in-test daemon made of dicts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.core.words import NOTHING, Words
from monitor.domain.incidents import Incident, IncidentStatus, IncidentUpdate
from monitor.domain.maintenance import Window, WindowProgress
from monitor.domain.operations import OperationError, OperatorAction
from monitor.web.api import add_api_routes, incident_json
from monitor.web.app import MAX_BODY, security_headers
from monitor.web.auth import BearerAuth, load_tokens
from monitor.web.opening import add_opening_routes

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()
WRITE = "ops-token-0123456789abcdef"
READ = "grafana-token-0123456789abcd"
TOKEN_FILE = f"# operators\nops:{WRITE}\n\ngrafana:{READ}:read\n"


class DictOperations:
    """The daemon as the operator API sees it, over plain dicts: the web layer's process edge."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.services = {"tracking", "labels"}
        self.incidents: dict[str, Incident] = {}
        self.updates: dict[str, list[IncidentUpdate]] = {}
        self.known: dict[str, tuple[Window, WindowProgress]] = {}

    def open(self, service_id: str, minutes_ago: float, **fields: Any) -> Incident:
        """Record an incident opened ``minutes_ago`` on ``service_id``."""
        at = self.now - minutes_ago * 60
        incident = Incident(
            id=f"{service_id}-{int(at)}",
            service_id=service_id,
            status=IncidentStatus.INVESTIGATING,
            opened_at=at,
            first_failure_at=at - 30,
            next_update_at=self.now + 1800,
            reason="connect_refused",
            **fields,
        )
        self.incidents[incident.id] = incident
        self.updates[incident.id] = [
            IncidentUpdate(incident.id, at, "investigating", "opened", NOTHING)
        ]
        return incident

    def list_incidents(self, *, include_resolved: bool) -> list[Incident]:
        """Open incidents, and resolved ones if asked, newest first."""
        chosen = [
            i
            for i in self.incidents.values()
            if include_resolved or i.status is not IncidentStatus.RESOLVED
        ]
        return sorted(chosen, key=lambda i: -i.opened_at)

    def incident(self, incident_id: str) -> Incident:
        """One incident, or a 404."""
        if incident_id not in self.incidents:
            raise OperationError(404, f"no incident {incident_id!r}")
        return self.incidents[incident_id]

    def timeline(self, incident_id: str) -> list[IncidentUpdate]:
        """An incident's entries, oldest first."""
        self.incident(incident_id)
        return list(self.updates[incident_id])

    def act(
        self,
        incident_id: str,
        action: OperatorAction,
        message: Words,
        review: bool = False,
        force: bool = False,
        page_only: bool = False,
    ) -> Incident:
        """Apply an action the way the daemon's rules allow it."""
        incident = self.incident(incident_id)
        resolved = incident.status is IncidentStatus.RESOLVED
        if (action is OperatorAction.POSTMORTEM) != resolved:
            raise OperationError(409, f"cannot {action.value} a {incident.status.value} incident")
        status = {
            OperatorAction.IDENTIFY: IncidentStatus.IDENTIFIED,
            OperatorAction.RESOLVE: IncidentStatus.RESOLVED,
        }.get(action, incident.status)
        emailed = 0 if page_only else 1  # a page-only update is no customer message
        incident = replace(incident, status=status, sequence=incident.sequence + emailed)
        if status is IncidentStatus.RESOLVED and incident.resolved_at is None:
            incident = replace(incident, resolved_at=self.now, next_update_at=None)
        self.incidents[incident_id] = incident
        entry = IncidentUpdate(incident_id, self.now, status.value, action.value, message)
        self.updates[incident_id].append(entry)
        return incident

    def open_incident(
        self, services: tuple[str, ...], message: Words, since: float | None = None
    ) -> Incident:
        """Open a manual incident on known services; 400 for an unknown one."""
        unknown = sorted(set(services) - self.services)
        if unknown:
            raise OperationError(400, f"unknown services: {', '.join(unknown)}")
        began = self.now if since is None else since
        incident = Incident(
            id=f"{services[0]}-{int(self.now)}",
            service_id=services[0],
            status=IncidentStatus.INVESTIGATING,
            opened_at=self.now,
            first_failure_at=began,
            sequence=1,
            customers_told_at=self.now,
            services=services,
            message=message,
            manual=True,
        )
        self.incidents[incident.id] = incident
        self.updates[incident.id] = [
            IncidentUpdate(incident.id, self.now, "investigating", "announced", message)
        ]
        return incident

    def windows(self) -> list[tuple[Window, WindowProgress]]:
        """Every window, by start."""
        return sorted(self.known.values(), key=lambda pair: pair[0].start)

    def add_window(self, window: Window) -> Window:
        """Keep a new window; 400 for unknown services, 409 for a taken id."""
        unknown = sorted(set(window.services) - self.services)
        if unknown:
            raise OperationError(400, f"unknown service {unknown[0]!r}")
        if window.id in self.known:
            raise OperationError(409, f"window {window.id!r} already exists")
        self.known[window.id] = (window, WindowProgress(window.id))
        return window

    def _live(self, window_id: str) -> tuple[Window, WindowProgress]:
        if window_id not in self.known:
            raise OperationError(404, f"no window {window_id!r}")
        window, progress = self.known[window_id]
        if window.cancelled or window.end <= self.now:
            raise OperationError(409, f"window {window_id!r} is over")
        return window, progress

    def extend_window(self, window_id: str, end: float) -> Window:
        """Move a live window's end."""
        window, progress = self._live(window_id)
        window = replace(window, end=end)
        self.known[window_id] = (window, progress)
        return window

    def cancel_window(self, window_id: str) -> Window:
        """Cancel a live window."""
        window, progress = self._live(window_id)
        window = replace(window, cancelled=True)
        self.known[window_id] = (window, replace(progress, cancelled_at=self.now))
        return window


def operator_app(ops: DictOperations, auth: BearerAuth | None) -> web.Application:
    """An app like the daemon's (same body limit and headers) serving only the operator API."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[security_headers])
    add_api_routes(app, ops, auth, lambda: ops.now)
    add_opening_routes(app)
    return app


def write_tokens(folder: Path) -> Path:
    """A token file with one write and one read-only token."""
    path = folder / "tokens"
    path.write_text(TOKEN_FILE, encoding="utf-8")
    return path


@pytest.fixture
def ops() -> DictOperations:
    """A daemon with one open incident on tracking and one resolved on labels."""
    daemon = DictOperations()
    daemon.open("tracking", minutes_ago=10)
    old = daemon.open("labels", minutes_ago=300)
    daemon.incidents[old.id] = replace(old, status=IncidentStatus.RESOLVED, resolved_at=NOW - 60)
    return daemon


@pytest.fixture
async def client(ops: DictOperations, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client on the operator API served on 127.0.0.1."""
    auth = BearerAuth(load_tokens(write_tokens(tmp_path)))
    async with TestClient(TestServer(operator_app(ops, auth), host="127.0.0.1")) as http:
        yield http


def bearer(token: str = WRITE) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


def tracking_id(ops: DictOperations) -> str:
    """The open incident's id."""
    return next(i.id for i in ops.incidents.values() if i.service_id == "tracking")


async def test_every_endpoint_refuses_a_request_without_a_token(
    client: TestClient[Any, Any],
) -> None:
    """Without a status board (no public view), reads are protected too: 401 with a challenge."""
    for method, path in [
        ("GET", "/api/v1/incidents"),
        ("GET", "/api/v1/incidents/x"),
        ("POST", "/api/v1/incidents/x/identify"),
        ("GET", "/api/v1/maintenance"),
        ("POST", "/api/v1/maintenance"),
        ("DELETE", "/api/v1/maintenance/x"),
    ]:
        response = await client.request(method, path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="forewarn"'
        assert "error" in await response.json()


async def test_without_a_token_file_the_api_is_closed_not_open(ops: DictOperations) -> None:
    """No auth configured means 401 for everyone, whatever token they send."""
    async with TestClient(TestServer(operator_app(ops, None), host="127.0.0.1")) as http:
        response = await http.get("/api/v1/incidents", headers=bearer())
        assert response.status == 401
        assert "api_tokens_file" in (await response.json())["error"]


async def test_listing_shows_open_incidents_with_utc_iso_times(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """A read token lists open incidents; times are ISO 8601 UTC with a Z."""
    response = await client.get("/api/v1/incidents", headers=bearer(READ))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    [incident] = (await response.json())["incidents"]
    assert incident["id"] == tracking_id(ops)
    assert incident["status"] == "investigating"
    assert incident["services"] == ["tracking"]
    assert incident["opened_at"] == "2026-11-22T11:50:00Z"
    assert incident["resolved_at"] is None


async def test_listing_all_adds_resolved_incidents(client: TestClient[Any, Any]) -> None:
    """``?all=1`` includes the recently resolved incident, newest first."""
    response = await client.get("/api/v1/incidents?all=1", headers=bearer(READ))
    statuses = [i["status"] for i in (await response.json())["incidents"]]
    assert statuses == ["investigating", "resolved"]
    bad = await client.get("/api/v1/incidents?all=maybe", headers=bearer(READ))
    assert bad.status == 400


async def test_showing_an_incident_includes_its_timeline(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """One incident comes with its customer-facing entries; an unknown id is a JSON 404."""
    response = await client.get(f"/api/v1/incidents/{tracking_id(ops)}", headers=bearer(READ))
    body = await response.json()
    assert body["incident"]["reason"] == "connect_refused"
    assert body["timeline"] == [
        {"at": "2026-11-22T11:50:00Z", "status": "investigating", "kind": "opened", "message": ""}
    ]
    missing = await client.get("/api/v1/incidents/nope", headers=bearer(READ))
    assert missing.status == 404
    assert await missing.json() == {"error": "no incident 'nope'"}


async def test_identify_changes_the_status_and_records_the_message(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """A write token's identify goes through operations.act and returns the incident."""
    incident_id = tracking_id(ops)
    response = await client.post(
        f"/api/v1/incidents/{incident_id}/identify",
        json={"message": "  The carrier's gateway is down.  "},
        headers=bearer(),
    )
    assert response.status == 200
    assert (await response.json())["incident"]["status"] == "identified"
    assert ops.updates[incident_id][-1].message == Words(every="The carrier's gateway is down.")


async def test_a_read_only_token_cannot_act(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """A read token on a write endpoint gets 403 and nothing changes."""
    response = await client.post(
        f"/api/v1/incidents/{tracking_id(ops)}/resolve",
        json={"message": "ok"},
        headers=bearer(READ),
    )
    assert response.status == 403
    assert "read-only" in (await response.json())["error"]
    assert ops.incidents[tracking_id(ops)].status is IncidentStatus.INVESTIGATING


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'["message"]', "JSON object"),
        (b'{"message": ""}', "message: expected a non-empty string"),
        (b'{"message": "   "}', "message: expected a non-empty string"),
        (b'{"message": 42}', "message: expected a non-empty string"),
        (b'{"message": "' + b"x" * 5001 + b'"}', "at most 5000 characters"),
        (b'{"message": "hi", "mesage": "typo"}', "unknown key 'mesage'"),
    ],
)
async def test_a_bad_action_body_is_a_400_naming_the_problem(
    client: TestClient[Any, Any], ops: DictOperations, body: bytes, fragment: str
) -> None:
    """Malformed JSON, missing or oversized messages and unknown keys are refused plainly."""
    response = await client.post(
        f"/api/v1/incidents/{tracking_id(ops)}/update", data=body, headers=bearer()
    )
    assert response.status == 400
    assert fragment in (await response.json())["error"]
    assert len(ops.updates[tracking_id(ops)]) == 1


async def test_a_refused_action_keeps_the_daemons_status_and_message(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """A postmortem on an open incident is the daemon's 409, passed through as JSON."""
    response = await client.post(
        f"/api/v1/incidents/{tracking_id(ops)}/postmortem", json={"message": "x"}, headers=bearer()
    )
    assert response.status == 409
    assert await response.json() == {"error": "cannot postmortem a investigating incident"}


async def test_an_unknown_action_is_not_found(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """Only the four operator actions exist."""
    response = await client.post(
        f"/api/v1/incidents/{tracking_id(ops)}/delete", json={"message": "x"}, headers=bearer()
    )
    assert response.status == 404
    assert "error" in await response.json()


async def test_a_body_over_64_kib_is_a_json_413(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """The app's body limit answers 413 in the API's error shape."""
    response = await client.post(
        f"/api/v1/incidents/{tracking_id(ops)}/update",
        data=b'{"message": "' + b"x" * (MAX_BODY + 10) + b'"}',
        headers=bearer(),
    )
    assert response.status == 413
    assert "larger than 65536 bytes" in (await response.json())["error"]


WINDOW = {
    "services": ["tracking", "labels"],
    "start": "2026-11-22T13:00:00+01:00",
    "end": "2026-11-22T15:00:00+01:00",
    "summary": {"fr": "Mise à jour", "en": "Upgrade"},
}


async def test_adding_a_window_parses_offsets_and_names_it(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """Times with an offset become UTC; without an id the window gets mw-<UTC start>."""
    response = await client.post("/api/v1/maintenance", json=WINDOW, headers=bearer())
    assert response.status == 201
    window = (await response.json())["window"]
    assert window["id"] == "mw-20261122-1200"
    assert response.headers["Location"] == "/api/v1/maintenance/mw-20261122-1200"
    assert (window["start"], window["end"]) == ("2026-11-22T12:00:00Z", "2026-11-22T14:00:00Z")
    assert window["announce_before"] == "24h"
    assert window["state"] == "scheduled"
    stored = ops.known["mw-20261122-1200"][0]
    assert stored.start == NOW and stored.services == ("tracking", "labels")
    assert stored.summary == {"fr": "Mise à jour", "en": "Upgrade"}
    again = await client.post("/api/v1/maintenance", json=WINDOW, headers=bearer())
    assert (await again.json())["window"]["id"] == "mw-20261122-1200-2"


async def test_a_window_with_its_own_id_and_notice_delay(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """A given id and announce_before are kept; a taken id is the daemon's 409."""
    body = {**WINDOW, "id": "release-42", "announce_before": "90m"}
    response = await client.post("/api/v1/maintenance", json=body, headers=bearer())
    assert (await response.json())["window"]["announce_before"] == "90m"
    assert ops.known["release-42"][0].announce_before == 5400
    duplicate = await client.post("/api/v1/maintenance", json=body, headers=bearer())
    assert duplicate.status == 409


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"start": "2026-11-22T13:00:00"}, "start: expected an ISO 8601 time with an offset"),
        ({"end": "tomorrow"}, "end: expected an ISO 8601 time"),
        ({"end": "2026-11-22T12:30:00+01:00"}, "end: must be after start"),
        ({"start": "2026-11-22T09:00Z", "end": "2026-11-22T10:00Z"}, "already in the past"),
        ({"services": []}, "services: expected a non-empty list"),
        ({"services": ["Tracking!"]}, "services: expected a non-empty list"),
        ({"services": ["billing"]}, "unknown service 'billing'"),
        ({"announce_before": "soon"}, "announce_before:"),
        ({"summary": {"de": "Wartung"}}, "summary:"),
        ({"id": "Release 42"}, "id: expected a short lowercase id"),
        ({"colour": "red"}, "unknown key 'colour'"),
    ],
)
async def test_a_bad_window_is_a_400_naming_the_field(
    client: TestClient[Any, Any], ops: DictOperations, change: dict[str, Any], fragment: str
) -> None:
    """Each wrong field is refused before any window is added."""
    response = await client.post("/api/v1/maintenance", json={**WINDOW, **change}, headers=bearer())
    assert response.status == 400
    assert fragment in (await response.json())["error"]
    assert ops.known == {}


async def test_windows_are_listed_extended_and_cancelled(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """A window moves through extend and cancel; the list shows where it stands."""
    await client.post("/api/v1/maintenance", json={**WINDOW, "id": "w1"}, headers=bearer())
    extended = await client.post(
        "/api/v1/maintenance/w1/extend", json={"end": "2026-11-22T16:30:00Z"}, headers=bearer()
    )
    assert (await extended.json())["window"]["end"] == "2026-11-22T16:30:00Z"
    cancelled = await client.delete("/api/v1/maintenance/w1", headers=bearer())
    assert (await cancelled.json())["window"]["state"] == "cancelled"
    listing = await client.get("/api/v1/maintenance", headers=bearer(READ))
    [window] = (await listing.json())["windows"]
    assert (window["id"], window["state"], window["cancelled_at"]) == (
        "w1",
        "cancelled",
        "2026-11-22T12:00:00Z",
    )
    again = await client.delete("/api/v1/maintenance/w1", headers=bearer())
    assert again.status == 409
    missing = await client.post(
        "/api/v1/maintenance/nope/extend", json={"end": "2026-11-23T00:00:00Z"}, headers=bearer()
    )
    assert missing.status == 404


@dataclass(frozen=True, slots=True)
class LaterIncident(Incident):
    """An incident with fields this API was written before."""

    services: tuple[str, ...] = ("tracking", "labels")
    postmortem: Words = NOTHING
    internal_note: frozenset[str] = frozenset({"pager"})


def test_incident_json_keeps_new_fields_and_the_public_view_only_allowed_ones() -> None:
    """Fields added later reach operators as JSON values; the public view is an allowlist."""
    incident = LaterIncident(
        "t-1", "tracking", IncidentStatus.MONITORING, NOW, NOW - 60, detail="10.0.0.7 refused"
    )
    operator = incident_json(incident)
    assert operator["services"] == ["tracking", "labels"]
    assert operator["internal_note"] == ["pager"]
    assert operator["detail"] == "10.0.0.7 refused"
    public = incident_json(incident, public=True)
    assert public["services"] == ["tracking", "labels"] and public["postmortem"] == ""
    assert "detail" not in public and "internal_note" not in public and "reason" not in public
    assert public["first_failure_at"] == "2026-11-22T11:59:00Z"
