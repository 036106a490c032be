"""A public status site for tests: a real SQLite store seeded with a week of history, a
StatusBoard over it with a fixed clock, and the daemon's app serving it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from monitor.config.load import Config
from monitor.core.words import NOTHING, Words
from monitor.domain.detector import CheckStatus
from monitor.domain.incidents import Incident, IncidentStatus, IncidentUpdate, ServiceView
from monitor.domain.maintenance import Window, WindowProgress
from monitor.probes.base import ProbeResult
from monitor.runtime.metrics import Metrics
from monitor.status.source import StatusBoard
from monitor.store.sqlite import SqliteStore
from monitor.web.app import build_app
from monitor.web.caching import BOARD_KEY
from monitor.web.status import add_status_routes

PARIS = ZoneInfo("Europe/Paris")


def paris(day: int, hour: int, minute: int = 0) -> float:
    """A Unix time on a day of November 2026, Paris wall clock."""
    return datetime(2026, 11, day, hour, minute, tzinfo=PARIS).timestamp()


NOW = paris(21, 12)
OPERATOR_WORDS = "Le transporteur redémarre son API.\nProchain point à 13 h."
POSTMORTEM = "Un certificat a expiré.\n\nNous surveillons désormais son échéance."
SECRET = "GET http://10.0.0.7/secret?token=abc: 500"  # a detail the public must never read

OPEN = Incident(
    id="tracking-20261121T102900-000",
    service_id="tracking",
    status=IncidentStatus.IDENTIFIED,
    opened_at=paris(21, 11, 30),
    first_failure_at=paris(21, 11, 29),
    customers_told_at=paris(21, 11, 32),
    reason="http_status",
    detail=SECRET,
    check_id="tracking-ws",
    services=("tracking",),
    message=Words(every=OPERATOR_WORDS),
)
RESOLVED = Incident(
    id="labels-20261118T090000-000",
    service_id="labels",
    status=IncidentStatus.RESOLVED,
    opened_at=paris(18, 10, 1),
    first_failure_at=paris(18, 10),
    customers_told_at=paris(18, 10, 3),
    recovered_at=paris(18, 10, 47),
    resolved_at=paris(18, 10, 52),
    reason="tls_expired",
    detail=SECRET,
    check_id="labels-ws",
    services=("labels",),
    postmortem=Words(every=POSTMORTEM),
)
TIMELINE = [
    IncidentUpdate(OPEN.id, paris(21, 11, 30), "investigating", "opened", NOTHING),
    IncidentUpdate(OPEN.id, paris(21, 11, 32), "investigating", "announced", NOTHING),
    IncidentUpdate(
        OPEN.id, paris(21, 11, 45), "identified", "identified", Words(every=OPERATOR_WORDS)
    ),
    IncidentUpdate(OPEN.id, paris(21, 11, 55), "identified", "update", NOTHING),  # cadence: hidden
    IncidentUpdate(RESOLVED.id, paris(18, 10, 1), "investigating", "opened", NOTHING),
    IncidentUpdate(RESOLVED.id, paris(18, 10, 52), "resolved", "resolved", NOTHING),
    IncidentUpdate(RESOLVED.id, paris(19, 9), "resolved", "postmortem", NOTHING),
]
UPGRADE = Window(
    id="labels-upgrade",
    services=("labels",),
    start=paris(22, 22),
    end=paris(22, 23, 30),
    summary={"fr": "Mise à jour du serveur d'étiquettes", "en": "Label server upgrade"},
)


def results(check_id: str, day: int, ok: int, failed: int) -> list[ProbeResult]:
    """``ok`` successes then ``failed`` failures of a check, a second apart from 11:00."""
    start = paris(day, 11)
    return [ProbeResult(check_id, start + n, n < ok) for n in range(ok + failed)]


def seed(store: SqliteStore) -> None:
    """Incidents, their timelines and four days of results, as the daemon would have written."""
    store.commit(incidents=[OPEN, RESOLVED], updates=TIMELINE)
    store.write_results(
        results("labels-ws", 18, 3, 1)  # 75,00 %, the resolved incident's day
        + results("labels-ws", 19, 1999, 1)  # 99,95 %
        + results("labels-ws", 20, 99, 1)  # 99,00 %
        + results("tracking-ws", 20, 10, 0)  # 100,00 %
        + results("tracking-ws", 21, 10, 10)  # 50,00 %, the open incident's day
    )


@dataclass
class World:
    """What the board sees besides the store; tests change it before serving."""

    config: Config
    views: dict[str, ServiceView] = field(default_factory=dict)
    open: list[Incident] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    progress: dict[str, WindowProgress] = field(default_factory=dict)

    def board(self, store: SqliteStore, now: float = NOW) -> StatusBoard:
        """A StatusBoard over this world and ``store``, its clock stopped at ``now``."""
        return StatusBoard(
            config=lambda: self.config,
            views=lambda: self.views,
            open_incidents=lambda: self.open,
            windows=lambda: (self.windows, self.progress),
            store=store,
            clock=lambda: now,
        )


def outage_world(config: Config) -> World:
    """Tracking down with its open incident, labels up, the labels upgrade coming tomorrow."""
    return World(
        config=config,
        views={
            "tracking": ServiceView("tracking", CheckStatus.DOWN, OPEN.first_failure_at),
            "labels": ServiceView("labels", CheckStatus.UP, RESOLVED.resolved_at or 0.0),
        },
        open=[OPEN],
        windows=[UPGRADE],
    )


def renamed(config: Config, service_id: str, names: dict[str, str]) -> Config:
    """``config`` with one service's public names replaced."""
    services = [
        s.model_copy(update={"name": names}) if s.id == service_id else s for s in config.services
    ]
    return config.model_copy(update={"services": services})


def quiet(world: World, **changes: Any) -> World:
    """``world`` with every service up and nothing open, then ``changes``."""
    views = {k: ServiceView(k, CheckStatus.UP, NOW - 3600) for k in world.views}
    return replace(world, views=views, open=[], **changes)


@asynccontextmanager
async def serve(board: StatusBoard) -> AsyncIterator[TestClient[Any, Any]]:
    """The daemon's app with the status routes, over real HTTP on 127.0.0.1."""
    app = build_app(Metrics(), lambda: {"status": "ok"})
    app[BOARD_KEY] = board
    add_status_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client
