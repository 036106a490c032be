"""``POST /api/v1/incidents`` (an incident no probe found) and page-only updates, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_api import READ, WRITE, DictOperations, operator_app, write_tokens

from monitor.core.words import Words
from monitor.web.auth import BearerAuth, load_tokens


@pytest.fixture
def ops() -> DictOperations:
    """A daemon with one open incident on tracking."""
    daemon = DictOperations()
    daemon.open("tracking", minutes_ago=10)
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


async def test_opening_answers_201_with_the_manual_incident(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """Services (repeats dropped), words and start go to operations.open_incident."""
    body = {
        "services": ["labels", "labels"],
        "message": {"fr": "Étiquettes vides", "en": "Blank labels"},
        "since": "2026-11-22T12:50:00+01:00",
    }
    response = await client.post("/api/v1/incidents", json=body, headers=bearer())
    assert response.status == 201
    incident = (await response.json())["incident"]
    assert response.headers["Location"] == f"/api/v1/incidents/{incident['id']}"
    assert incident["manual"] is True and incident["services"] == ["labels"]
    assert incident["first_failure_at"].startswith("2026-11-22T11:50:00")
    assert ops.incidents[incident["id"]].message == Words.of(body["message"])


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        pytest.param({"message": "x"}, 400, "services", id="no-services"),
        pytest.param({"services": "labels", "message": "x"}, 400, "services", id="not-a-list"),
        pytest.param({"services": ["labels"]}, 400, "message", id="no-message"),
        pytest.param({"services": ["nope"], "message": "x"}, 400, "unknown", id="unknown"),
        pytest.param(
            {"services": ["labels"], "message": "x", "since": "2026-11-22T13:30:00+00:00"},
            400,
            "future",
            id="begins-later",
        ),
        pytest.param({"services": ["labels"], "message": "x", "why": 1}, 400, "why", id="key"),
    ],
)
async def test_opening_refusals(
    client: TestClient[Any, Any],
    ops: DictOperations,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    """A malformed or impossible opening is refused and opens nothing."""
    before = dict(ops.incidents)
    response = await client.post("/api/v1/incidents", json=body, headers=bearer())
    assert response.status == status
    assert fragment in (await response.json())["error"]
    assert ops.incidents == before


async def test_a_read_only_token_cannot_open(
    client: TestClient[Any, Any], ops: DictOperations
) -> None:
    """Opening is a write: 403 for a read token."""
    body = {"services": ["labels"], "message": "x"}
    response = await client.post("/api/v1/incidents", json=body, headers=bearer(READ))
    assert response.status == 403 and len(ops.incidents) == 1


@pytest.mark.parametrize(("flag", "sequence"), [(True, 0), (False, 1)])
async def test_page_only_reaches_operations(
    client: TestClient[Any, Any], ops: DictOperations, flag: bool, sequence: int
) -> None:
    """``page_only`` is passed on; a non-boolean is a 400."""
    incident_id = next(iter(ops.incidents))
    url = f"/api/v1/incidents/{incident_id}/update"
    body = {"message": "Gateway restarted", "page_only": flag}
    response = await client.post(url, json=body, headers=bearer())
    assert response.status == 200
    assert ops.incidents[incident_id].sequence == sequence
    bad = await client.post(url, json={"message": "x", "page_only": "yes"}, headers=bearer())
    assert bad.status == 400 and "page_only" in (await bad.json())["error"]
