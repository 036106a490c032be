"""A running daemon with a public story to tell: an open incident, a maintenance, a past incident.

The browser test and the leak test look at the same scene. The failing target puts internal
secrets (a hostname, a private IP, a traceback) into its answers, and the check's URL carries a
token, so the operator side knows them all, and the public side must show none of them.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.config.load import load_config
from monitor.core.words import NOTHING, Words
from monitor.daemon import Daemon
from monitor.domain.availability import day_bounds, last_days
from monitor.domain.incidents import ChangeKind, Incident, IncidentStatus, IncidentUpdate
from monitor.domain.operations import OperatorAction
from monitor.probes.base import ProbeResult
from monitor.store.sqlite import SqliteStore
from tests.waiting import until

HOSTNAME = "db-master.internal.corp"
PRIVATE_IP = "10.20.30.40"
URL_TOKEN = "url-token-7f3a9c51"
TRACEBACK = "Traceback (most recent call last)"
LOGO_FOLDER = "brand-assets-c0ffee"  # where the logo lies on disk: never shown to the public
SECRETS = (HOSTNAME, PRIVATE_IP, URL_TOKEN, TRACEBACK, "127.0.0.1", LOGO_FOLDER)
# The company's logo; the script must never run, wherever the logo is shown.
LOGO_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 32" width="64" height="32">'
    b'<rect width="64" height="32" rx="4" fill="#17325c"/><circle cx="16" cy="16" r="8" '
    b'fill="#f2b134"/><script>document.title = "pwned"</script></svg>'
)
TITLE = {"fr": "Transports Martin — état des services", "en": "Martin Transport status"}
CONTACT_URL = "https://www.carrier.example/contact"
CONTACT_EMAIL = "support@carrier.example"

IDENTIFIED = (
    "The carrier's tracking database is failing over to its standby; labels are unaffected."
)
POSTMORTEM = (
    "A certificate on the carrier's gateway expired at 09:12.\n\n"
    "We now check certificates 14 days ahead and renew them automatically."
)
ZONE = ZoneInfo("Europe/Paris")

CHECKS_YAML = """\
daemon: {{state_dir: "{state}", listen: "127.0.0.1:{port}",
         public_url: "https://status.carrier.example", timezone: Europe/Paris}}
defaults: {{interval: 200ms, timeout: 1s, retry_interval: 100ms,
           failure_threshold: 2, success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
  - {{id: edi, name: {{fr: Échanges EDI, en: EDI exchanges}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http,
     url: "{url}tracking?token={token}", expect: {{json: {{"$.status": "OK"}}}}}}
  - {{id: labels-ws, service: labels, type: http, url: "{url}labels"}}
  - {{id: edi-gw, service: edi, type: http, url: "{url}edi",
     expect: {{json: {{"$.status": "OK"}}}}}}
customers:
  - {{id: acme, name: ACME Boutique, email: ops@acme.example, language: fr,
     services: [tracking, labels, edi]}}
notices:
  from: "Support <support@carrier.example>"
  transport: file
  customer_delay: 0s
  update_every: 1h
  stable_for: 1h
  digest_window: 0s
status_page:
  title: {{fr: "{title_fr}", en: "{title_en}"}}
  logo_file: "{logo}"
  contact_url: "{contact_url}"
  contact_email: "{contact_email}"
maintenance:
  - id: edi-rollback
    services: [edi]
    start: "{start}"
    end: "{end}"
    announce_before: 0s
    summary: {{fr: "Retour à la version précédente de la passerelle EDI.",
              en: "Rolling the EDI gateway back to its previous release."}}
"""


@dataclass
class Scene:
    """The running daemon, where its public side answers, and the open incident's id."""

    daemon: Daemon
    base_url: str
    incident_id: str
    resolved_id: str


def _free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port: int = free.getsockname()[1]
        return port


async def _target() -> TestServer:
    """Tracking and EDI (under maintenance) fail with internal details; labels answer."""

    async def tracking(_: web.Request) -> web.Response:
        # 200: the body says what failed, and the check reports it.
        return web.json_response({"status": f"KO {HOSTNAME} {PRIVATE_IP}"})

    async def edi(_: web.Request) -> web.Response:
        return web.json_response({"status": TRACEBACK})

    async def fine(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/tracking", tracking)
    app.router.add_get("/labels", fine)
    app.router.add_get("/edi", edi)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def _seed(state: Path, now: float) -> str:
    """89 days of hourly results, a bad day for tracking, and a resolved incident 3 days ago."""
    store = SqliteStore.open(state, ZONE)
    try:
        results = []
        for index, day in enumerate(last_days(now, ZONE)[:-1]):
            start, _ = day_bounds(day, ZONE)
            for hour in range(24):
                at = start + hour * 3600 + 600
                results.append(ProbeResult("labels-ws", at, ok=True))
                results.append(ProbeResult("tracking-ws", at, ok=not (index == 86 and hour < 3)))
                results.append(ProbeResult("edi-gw", at, ok=day.weekday() != 6 or hour > 0))
        store.write_results(results)
        began = now - 3 * 86400 - 43200
        past = Incident(
            id="tracking-past",
            service_id="tracking",
            status=IncidentStatus.RESOLVED,
            opened_at=began,
            first_failure_at=began - 60,
            customers_told_at=began + 60,
            recovered_at=began + 3 * 3600,
            resolved_at=began + 3 * 3600 + 300,
            reason="json_mismatch",
            detail=f"{HOSTNAME} {PRIVATE_IP}",
            services=("tracking",),
            postmortem=Words(every=POSTMORTEM),
        )
        updates = [
            IncidentUpdate(past.id, began, "investigating", ChangeKind.OPENED, NOTHING),
            IncidentUpdate(
                past.id, began + 3 * 3600 + 300, "resolved", ChangeKind.RESOLVED, NOTHING
            ),
            IncidentUpdate(
                past.id, began + 86400, "resolved", ChangeKind.POSTMORTEM, Words(every=POSTMORTEM)
            ),
        ]
        store.commit(incidents=[past], updates=updates)
        return past.id
    finally:
        store.close()


@asynccontextmanager
async def status_scene(tmp_path: Path, now: float) -> AsyncIterator[Scene]:
    """Start the scene at wall-clock ``now``; stop everything afterwards."""
    target = await _target()
    state = tmp_path / "state"
    resolved_id = _seed(state, now)
    path = tmp_path / "checks.yaml"
    logo = tmp_path / LOGO_FOLDER / "logo.svg"
    logo.parent.mkdir()
    logo.write_bytes(LOGO_SVG)
    path.write_text(
        CHECKS_YAML.format(
            logo=logo,
            title_fr=TITLE["fr"],
            title_en=TITLE["en"],
            contact_url=CONTACT_URL,
            contact_email=CONTACT_EMAIL,
            state=state,
            port=_free_port(),
            url=target.make_url("/"),
            token=URL_TOKEN,
            start=datetime.fromtimestamp(now - 600, ZONE).isoformat(timespec="seconds"),
            end=datetime.fromtimestamp(now + 7200, ZONE).isoformat(timespec="seconds"),
        ),
        encoding="utf-8",
    )
    daemon = Daemon(load_config(path))
    await daemon.start()
    try:
        await until(lambda: daemon.engine.covering("tracking") is not None, 10)
        incident = daemon.engine.covering("tracking")
        assert incident is not None
        daemon.desk.act(incident.id, OperatorAction.IDENTIFY, Words(every=IDENTIFIED))
        yield Scene(daemon, f"http://127.0.0.1:{daemon.port}", incident.id, resolved_id)
    finally:
        await daemon.stop(deadline_s=1.0)
        await target.close()
