"""The public JSON API over real HTTP, checked against docs/status-api.md, and its shared paths."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.words import Words
from monitor.domain.incidents import ChangeKind, IncidentUpdate
from monitor.status.board import PublicState, ServiceStatus
from monitor.status.words import entry_text
from monitor.web.public_api import overall
from tests.conftest import ConfigFactory
from tests.public_scene import (
    BLIP_ID,
    CUSTOMER_EMAIL,
    MAINTENANCE,
    NOW,
    OLD_ID,
    OPEN_ID,
    READ,
    RESOLVED_ID,
    Scene,
    public_scene,
)

DOC = Path(__file__).parent.parent / "docs" / "status-api.md"
SECRETS = ("http_status", "10.0.0.7", "s3cr3t", "tracking-ws", "labels-ws", CUSTOMER_EMAIL)
INTERNAL_KEYS = {"reason", "detail", "check_id", "customers_told_at", "sequence", "announced"}


def doc_examples() -> dict[str, list[Any]]:
    """Each ``## `GET /api/…``` section of the doc → the JSON blocks in it, in order."""
    examples: dict[str, list[Any]] = {}
    sections = re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for section in sections:
        heading = re.match(r"`GET (/api/v1/[^`]+)`", section)
        if heading:
            blocks = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
            examples[heading.group(1)] = [json.loads(b) for b in blocks]
    return examples


def shape_differences(documented: Any, live: Any, where: str = "$") -> list[str]:
    """Where ``live`` does not have ``documented``'s shape: keys at every level, and types."""
    if documented is None or live is None:
        return []  # a nullable field: the example and the answer may each hold a value or not
    if isinstance(documented, dict):
        if not isinstance(live, dict):
            return [f"{where}: an object in the doc, {type(live).__name__} live"]
        if set(documented) != set(live):
            return [f"{where}: keys {sorted(documented)} in the doc, {sorted(live)} live"]
        return [
            p
            for k in documented
            for p in shape_differences(documented[k], live[k], where + "." + k)
        ]
    if isinstance(documented, list):
        if not isinstance(live, list):
            return [f"{where}: a list in the doc, {type(live).__name__} live"]
        if not documented:
            return []
        return [
            p
            for i, item in enumerate(live)
            for p in shape_differences(documented[0], item, f"{where}[{i}]")
        ]
    kinds = (
        (bool,)
        if isinstance(documented, bool)
        else (int, float)
        if isinstance(documented, int | float)
        else (str,)
    )
    if not isinstance(live, kinds) or (bool not in kinds and isinstance(live, bool)):
        return [f"{where}: {type(documented).__name__} in the doc, {type(live).__name__} live"]
    return []


@pytest.fixture
async def scene(make_config: ConfigFactory, tmp_path: Path) -> AsyncIterator[Scene]:
    """The seeded story served with both APIs."""
    async with public_scene(make_config(extra=MAINTENANCE), tmp_path) as served:
        yield served


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def get_json(scene: Scene, path: str, **headers: str) -> Any:
    """GET ``path`` and its JSON body, after checking it is a 200 JSON answer."""
    response = await scene.client.get(path, headers=headers)
    assert response.status == 200, path
    assert response.content_type == "application/json"
    return await response.json()


def test_the_doc_has_an_example_for_every_json_endpoint() -> None:
    """Each public JSON endpoint has its section and example; the shape test below needs them."""
    examples = doc_examples()
    assert set(examples) == {
        "/api/v1/status", "/api/v1/status/history", "/api/v1/incidents", "/api/v1/incidents/{id}",
    }  # fmt: skip
    assert all(examples.values())


@pytest.mark.parametrize(
    ("documented", "path"),
    [
        ("/api/v1/status", "/api/v1/status"),
        ("/api/v1/status/history", "/api/v1/status/history"),
        ("/api/v1/incidents", "/api/v1/incidents"),
        ("/api/v1/incidents/{id}", f"/api/v1/incidents/{OPEN_ID}"),
        ("/api/v1/incidents/{id}", f"/api/v1/incidents/{RESOLVED_ID}"),
    ],
)
async def test_live_answers_have_the_documented_shape(
    scene: Scene, documented: str, path: str
) -> None:
    """Every key the doc shows is in the answer and no other, with compatible types."""
    example = doc_examples()[documented][0]
    live = await get_json(scene, path)
    assert shape_differences(example, live) == []


async def test_an_unlisted_incident_is_the_documented_404(scene: Scene) -> None:
    """Unknown, never-told and long-resolved ids get the same JSON 404, shaped as documented."""
    example = doc_examples()["/api/v1/incidents/{id}"][1]
    for incident_id in ("nope", BLIP_ID, OLD_ID):
        response = await scene.client.get(f"/api/v1/incidents/{incident_id}")
        assert response.status == 404
        body = await response.json()
        assert shape_differences(example, body) == []
        assert body == {"error": f"no public incident {incident_id!r}"}


async def test_status_gives_the_worst_state_open_incidents_and_current_maintenance(
    scene: Scene,
) -> None:
    """Tracking is down and labels in its window: an outage, one incident, two windows."""
    body = await get_json(scene, "/api/v1/status")
    assert body["status"] == "outage"
    assert body["page"] == {
        "url": "https://status.example.net/", "updated_at": "2026-11-22T11:55:00Z",
        "title": None, "logo_url": None, "contact_url": None, "contact_email": None,
    }  # fmt: skip
    services = {s["id"]: s for s in body["services"]}
    assert services["tracking"]["state"] == "outage"
    assert services["tracking"]["since"] == "2026-11-22T11:29:30Z"
    assert services["tracking"]["uptime_90d"] == 97.222  # 35 of 36 results
    assert services["labels"]["state"] == "maintenance"
    assert services["labels"]["name"] == {"fr": "Étiquettes", "en": "Shipping labels"}
    assert [i["id"] for i in body["incidents"]] == [OPEN_ID]
    windows = [(w["id"], w["state"]) for w in body["maintenance"]]
    assert windows == [("labels-upgrade", "in_progress"), ("tracking-move", "announced")]


async def test_history_has_ninety_local_days_per_service(scene: Scene) -> None:
    """Each service has 90 days ending today in Paris, with figures and incident ids."""
    body = await get_json(scene, "/api/v1/status/history")
    assert body["timezone"] == "Europe/Paris"
    tracking = next(s for s in body["services"] if s["id"] == "tracking")
    days = tracking["days"]
    assert len(days) == 90
    assert (days[0]["date"], days[-1]["date"]) == ("2026-08-25", "2026-11-22")
    assert days[-1] == {"date": "2026-11-22", "availability": 92.308, "incidents": [OPEN_ID]}
    assert days[-2]["availability"] == 100.0 and days[-4]["availability"] is None
    assert next(d for d in days if d["date"] == "2026-11-01")["incidents"] == [OLD_ID]


async def test_incidents_list_open_then_recently_resolved_told_ones(scene: Scene) -> None:
    """The never-told blip and the incident resolved three weeks ago are not listed."""
    body = await get_json(scene, "/api/v1/incidents")
    assert [i["id"] for i in body["incidents"]] == [OPEN_ID, RESOLVED_ID]


async def test_a_request_without_a_token_never_sees_internal_fields(scene: Scene) -> None:
    """No reason, detail, check id or customer address, in keys or in values."""
    for path in ("/api/v1/incidents", f"/api/v1/incidents/{OPEN_ID}", "/api/v1/status"):
        response = await scene.client.get(path)
        text = await response.text()
        assert response.status == 200
        for secret in SECRETS:
            assert secret not in text, (path, secret)
    incident = (await get_json(scene, f"/api/v1/incidents/{OPEN_ID}"))["incident"]
    assert not INTERNAL_KEYS & set(incident)


async def test_public_updates_leave_out_silent_entries_and_speak_the_readers_language(
    scene: Scene,
) -> None:
    """Announced and no-news cadence entries are left out; ``text`` follows ?lang and the header."""
    english = await get_json(scene, f"/api/v1/incidents/{OPEN_ID}?lang=en")
    kinds = [u["kind"] for u in english["incident"]["updates"]]
    assert kinds == ["opened", "identified", "update"]
    assert english["incident"]["updates"][0]["text"].startswith("We detected an interruption")
    french = await get_json(scene, f"/api/v1/incidents/{OPEN_ID}", **{"Accept-Language": "fr"})
    assert french["incident"]["updates"][0]["text"].startswith("Nous avons détecté")
    asked = await scene.client.get(
        f"/api/v1/incidents/{OPEN_ID}?lang=en", headers={"Accept-Language": "fr"}
    )
    assert asked.headers["Content-Language"] == "en"


async def test_a_bad_token_is_a_401_that_counts_toward_the_slowdown(scene: Scene) -> None:
    """A wrong token never falls back to the public view; five of them earn a 429 (bad ones)."""
    for _ in range(5):
        refused = await scene.client.get("/api/v1/incidents", headers=bearer("x" * 24))
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="forewarn"'
    throttled = await scene.client.get(f"/api/v1/incidents/{OPEN_ID}", headers=bearer("y" * 24))
    assert throttled.status == 429
    valid = await scene.client.get(f"/api/v1/incidents/{OPEN_ID}", headers=bearer(READ))
    assert valid.status == 200  # the operator is never locked out
    public = await scene.client.get("/api/v1/incidents")  # the public view stays open to all
    assert public.status == 200


async def test_a_valid_token_gets_the_operator_view(scene: Scene) -> None:
    """The operator sees reasons, details and the raw timeline, uncached."""
    response = await scene.client.get(f"/api/v1/incidents/{OPEN_ID}", headers=bearer(READ))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in response.headers
    body = await response.json()
    assert body["incident"]["reason"] == "http_status"
    assert body["incident"]["check_id"] == "tracking-ws"
    assert [u["kind"] for u in body["timeline"]][:2] == ["opened", "announced"]
    listing = await scene.client.get("/api/v1/incidents?all=1", headers=bearer(READ))
    ids = [i["id"] for i in (await listing.json())["incidents"]]
    assert OPEN_ID in ids and BLIP_ID in ids  # operators see the quiet blip too


async def test_writes_and_maintenance_still_need_a_token(scene: Scene) -> None:
    """Only the two incident reads are shared: everything else answers 401 without a token."""
    for method, path in [
        ("POST", f"/api/v1/incidents/{OPEN_ID}/identify"),
        ("GET", "/api/v1/maintenance"),
        ("POST", "/api/v1/maintenance"),
    ]:
        response = await scene.client.request(method, path)
        assert response.status == 401, path


async def test_the_shared_paths_work_whichever_api_is_added_first(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    """With the operator API routed before the public one, both views still answer."""
    config = make_config(extra=MAINTENANCE)
    async with public_scene(config, tmp_path, operator_first=True) as served:
        public = await get_json(served, f"/api/v1/incidents/{OPEN_ID}")
        assert "reason" not in public["incident"]
        operator = await get_json(served, f"/api/v1/incidents/{OPEN_ID}", **bearer(READ))
        assert operator["incident"]["reason"] == "http_status"


async def test_public_answers_allow_any_origin_and_vary_on_the_token(scene: Scene) -> None:
    """CORS everywhere public; the shared paths tell caches the answer depends on Authorization."""
    status = await scene.client.get("/api/v1/status")
    assert status.headers["Access-Control-Allow-Origin"] == "*"
    assert status.headers["Cache-Control"] == "public, max-age=30"
    shared = await scene.client.get("/api/v1/incidents")
    assert shared.headers["Access-Control-Allow-Origin"] == "*"
    assert shared.headers["Vary"] == "Accept-Language, Authorization"
    history = await scene.client.get("/api/v1/status/history")
    assert "Vary" not in history.headers  # the same bytes in every language


async def test_an_unchanged_document_is_a_304_and_a_change_is_not(scene: Scene) -> None:
    """If-None-Match and If-Modified-Since get a bodiless 304 until a new entry changes it."""
    first = await scene.client.get("/api/v1/incidents")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert modified == "Sun, 22 Nov 2026 11:55:00 GMT"
    same = await scene.client.get("/api/v1/incidents", headers={"If-None-Match": etag})
    assert same.status == 304 and await same.read() == b""
    since = await scene.client.get("/api/v1/incidents", headers={"If-Modified-Since": modified})
    assert since.status == 304
    news = IncidentUpdate(
        OPEN_ID, NOW - 10, "identified", ChangeKind.UPDATE, Words(every="Almost there.")
    )
    scene.store.commit(updates=[news])
    scene.board.invalidate()
    changed = await scene.client.get("/api/v1/incidents", headers={"If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag
    later = await scene.client.get("/api/v1/incidents", headers={"If-Modified-Since": modified})
    assert later.status == 200


async def test_status_last_modified_counts_the_latest_result(scene: Scene) -> None:
    """Availability moves with each result, so Last-Modified is the latest one (not 11:55)."""
    response = await scene.client.get("/api/v1/status")
    assert response.headers["Last-Modified"] == "Sun, 22 Nov 2026 11:59:30 GMT"


def _service(state: PublicState) -> ServiceStatus:
    return ServiceStatus(f"s-{state}", {"fr": "S", "en": "S"}, state, NOW, None, ())


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([PublicState.OPERATIONAL, PublicState.OUTAGE, PublicState.DEGRADED], "outage"),
        ([PublicState.MAINTENANCE, PublicState.DEGRADED], "degraded"),
        ([PublicState.OPERATIONAL, PublicState.MAINTENANCE], "maintenance"),
        ([PublicState.OPERATIONAL, PublicState.UNKNOWN], "operational"),
        ([], "operational"),
    ],
)
def test_overall_status_is_the_worst_service_state(
    states: list[PublicState], expected: str
) -> None:
    """Outage beats degraded beats maintenance; a service awaiting data does not count."""
    assert overall([_service(s) for s in states]) == expected


async def test_operator_words_per_language_are_public_in_each_language(scene: Scene) -> None:
    """Words given in fr and en: each reader's JSON (and page text) is in their language."""
    words = Words.of({"fr": "Bascule à 80 %.", "en": "Failover at 80 %."})
    news = IncidentUpdate(OPEN_ID, NOW - 10, "identified", ChangeKind.UPDATE, words)
    scene.store.commit(updates=[news])
    scene.board.invalidate()
    for language, expected in (("fr", "Bascule à 80 %."), ("en", "Failover at 80 %.")):
        answer = await scene.client.get(f"/api/v1/incidents/{OPEN_ID}?lang={language}")
        latest = (await answer.json())["incident"]["updates"][-1]
        assert (latest["message"], latest["text"]) == (expected, expected)
        assert entry_text(news, language) == expected  # what the page and the feed show
