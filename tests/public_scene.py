"""A public story on a real SqliteStore: an open incident, a resolved one, maintenance past and now.

The feed and public API tests serve it over real HTTP with the status board, the public API,
the feed and the operator API (a real Desk on a real Engine) on one app, as the daemon does.
The open incident carries a reason, a detail and a check id the public side must never show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from monitor.config.load import Config
from monitor.core.render import Renderer
from monitor.core.words import Words
from monitor.desk import Desk
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import (
    ChangeKind,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    ServiceView,
)
from monitor.domain.maintenance import WindowProgress
from monitor.engine import Engine
from monitor.notices.planner import NoticePlanner
from monitor.probes.base import ProbeResult
from monitor.runtime.metrics import Metrics
from monitor.status.source import StatusBoard
from monitor.store.sqlite import SqliteStore
from monitor.web.api import add_api_routes
from monitor.web.app import build_app
from monitor.web.auth import BearerAuth, load_tokens
from monitor.web.caching import BOARD_KEY
from monitor.web.feed import add_feed_routes
from monitor.web.public_api import add_public_api_routes

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()  # 13:00 in Paris
DAY = 86400.0
ZONE = ZoneInfo("Europe/Paris")
WRITE = "ops-token-0123456789abcdef"
READ = "grafana-token-0123456789abcd"

OPEN_ID = "tracking-20261122T112930-000"
RESOLVED_ID = "labels-20261120T100000-000"
BLIP_ID = "labels-20261122T070000-000"  # resolved before customers were told: never public
OLD_ID = "tracking-20261101T080000-000"  # resolved 3 weeks ago: in the bars, off the lists
SECRET_DETAIL = "GET https://10.0.0.7/ws?token=s3cr3t-value: 503"
CUSTOMER_EMAIL = "ops@acme.example"
IDENTIFIED = "The carrier's <b>database</b> & its standby are failing over."
UPDATE = "Failover at 80 %; next step at 14:00."

MAINTENANCE = """\
maintenance:
  - {id: labels-upgrade, services: [labels], start: "2026-11-22T12:50:00+01:00",
     end: "2026-11-22T14:00:00+01:00", announce_before: 1h,
     summary: {fr: "Mise à jour de la plateforme d'étiquettes.", en: "Label platform upgrade."}}
  - {id: tracking-move, services: [tracking, labels], start: "2026-11-22T20:00:00+01:00",
     end: "2026-11-22T21:00:00+01:00", announce_before: 24h,
     summary: {fr: "Déménagement des serveurs.", en: "Server move."}}
  - {id: labels-patch, services: [labels], start: "2026-11-21T22:00:00+01:00",
     end: "2026-11-21T23:00:00+01:00", announce_before: 0s,
     summary: {fr: "Correctif de sécurité.", en: "Security patch."}}
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Scene:
    """The served app's parts, for tests that change the story between requests."""

    client: TestClient[Any, Any]
    store: SqliteStore
    board: StatusBoard
    clock: Clock


def _incident(id_: str, service: str, opened: float, **fields: Any) -> Incident:
    values: dict[str, Any] = {
        "status": IncidentStatus.RESOLVED,
        "first_failure_at": opened - 30,
        "customers_told_at": opened + 60,
        "reason": "http_status",
        "detail": SECRET_DETAIL,
        "check_id": f"{service}-ws",
        "services": (service,),
    }
    return Incident(id=id_, service_id=service, opened_at=opened, **{**values, **fields})


def seed(store: SqliteStore) -> None:
    """Incidents with their timelines, window progress, and two days of results."""
    opened = NOW - 1800
    open_one = _incident(
        OPEN_ID,
        "tracking",
        opened,
        status=IncidentStatus.IDENTIFIED,
        next_update_at=NOW + 1800,
        message=Words(every=UPDATE),
    )
    resolved = _incident(
        RESOLVED_ID, "labels", NOW - 2 * DAY, recovered_at=NOW - 2 * DAY + 3000,
        resolved_at=NOW - 2 * DAY + 3600, services=("labels", "tracking"),
    )  # fmt: skip
    blip = _incident(
        BLIP_ID, "labels", NOW - 5 * 3600, customers_told_at=None, resolved_at=NOW - 5 * 3600 + 60
    )
    old = _incident(OLD_ID, "tracking", NOW - 21 * DAY, resolved_at=NOW - 21 * DAY + 600)

    def entry(
        incident_id: str, at: float, status: str, kind: str, message: str = ""
    ) -> IncidentUpdate:
        return IncidentUpdate(incident_id, at, status, kind, Words(every=message))

    updates = [
        entry(OPEN_ID, opened, "investigating", ChangeKind.OPENED),
        entry(OPEN_ID, opened + 60, "investigating", ChangeKind.ANNOUNCED),  # not public
        entry(OPEN_ID, opened + 600, "investigating", ChangeKind.UPDATE),  # cadence: not shown
        entry(OPEN_ID, opened + 900, "identified", ChangeKind.IDENTIFIED, IDENTIFIED),
        entry(OPEN_ID, opened + 1500, "identified", ChangeKind.UPDATE, UPDATE),
        entry(RESOLVED_ID, NOW - 2 * DAY, "investigating", ChangeKind.OPENED),
        entry(RESOLVED_ID, NOW - 2 * DAY + 3000, "monitoring", ChangeKind.RECOVERING),
        entry(RESOLVED_ID, NOW - 2 * DAY + 3600, "resolved", ChangeKind.RESOLVED),
        entry(BLIP_ID, NOW - 5 * 3600, "investigating", ChangeKind.OPENED),
        entry(OLD_ID, NOW - 21 * DAY, "investigating", ChangeKind.OPENED),
    ]
    progress = [
        WindowProgress("labels-upgrade", announced_at=NOW - 4200, started_at=NOW - 600),
        WindowProgress("tracking-move", announced_at=NOW - 3600),
        WindowProgress("labels-patch", started_at=NOW - 15 * 3600, ended_at=NOW - 14 * 3600),
    ]
    store.commit(incidents=[open_one, resolved, blip, old], updates=updates, progress=progress)
    results = []
    for hour in range(36):  # hourly up to now: tracking's last result failed
        at = NOW - 35 * 3600 + hour * 3600 - 30
        results.append(ProbeResult("labels-ws", at, ok=True))
        results.append(ProbeResult("tracking-ws", at, ok=at < NOW - 1830))
    store.write_results(results)


def views() -> dict[str, ServiceView]:
    """The engine's views of the two services: tracking down, labels up (in its window)."""
    return {
        "tracking": ServiceView("tracking", CheckStatus.DOWN, since=NOW - 1830),
        "labels": ServiceView("labels", CheckStatus.UP, since=NOW - 3 * DAY),
    }


@asynccontextmanager
async def public_scene(
    config: Config, tmp_path: Path, *, operator_first: bool = False
) -> AsyncIterator[Scene]:
    """Serve the seeded story on 127.0.0.1, public and operator APIs on one app."""
    store = SqliteStore.open(config.daemon.state_dir, ZONE)
    try:
        seed(store)
        clock = Clock()
        engine = Engine(config, store, NoticePlanner(config, Renderer()), Metrics(), clock)
        board = StatusBoard(
            config=lambda: engine.config,
            views=views,
            open_incidents=lambda: list(engine.open.values()),
            windows=lambda: (engine.windows, engine.progress),
            store=store,
            clock=clock,
        )
        tokens = tmp_path / "tokens"
        tokens.write_text(f"ops:{WRITE}\ngrafana:{READ}:read\n", encoding="utf-8")
        app = build_app(Metrics(), lambda: {"status": "ok"})
        app[BOARD_KEY] = board
        desk, auth = Desk(engine, lambda: None), BearerAuth(load_tokens(tokens))
        if operator_first:
            add_api_routes(app, desk, auth, clock)
        add_public_api_routes(app)
        add_feed_routes(app)
        if not operator_first:
            add_api_routes(app, desk, auth, clock)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield Scene(client, store, board, clock)
    finally:
        store.close()
