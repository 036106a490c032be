"""``forewarn demo``: simulated carrier services, a real outage, and the emails it causes."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import aiohttp
from aiohttp import web

from monitor.cli.smtpsink import ReceivedMessage, SmtpSink
from monitor.config.load import Config, load_config
from monitor.core.words import Words
from monitor.daemon import Daemon
from monitor.domain.operations import OperatorAction

DEMO_CONFIG = """\
# Written by `forewarn demo`: a carrier's web services, simulated on 127.0.0.1.
daemon:
  state_dir: {state}
  listen: 127.0.0.1:{web}
  public_url: http://127.0.0.1:{web}
  timezone: Europe/Paris
defaults: {{interval: 2s, timeout: 1s, retry_interval: 500ms, failure_threshold: 3,
           success_threshold: 2}}
services:
  - id: tracking
    name: {{fr: Suivi de colis, en: Parcel tracking}}
  - id: labels
    name: {{fr: Étiquettes, en: Shipping labels}}
checks:
  - id: tracking-ws
    service: tracking
    type: http
    url: http://127.0.0.1:{carrier}/tracking/v2/parcels/6A00000000000
    expect: {{status: [200], body_contains: parcelNumber, json: {{"$.status": "OK"}}}}
  - id: labels-ws
    service: labels
    type: http
    method: POST
    url: http://127.0.0.1:{carrier}/labels/v1/generate
    body: '{{"weight_g": 500}}'
    expect: {{status: [200], body_contains: label}}
customers:
  - {{id: acme, name: ACME Boutique, email: ops@acme.example, language: fr,
     services: [tracking, labels]}}
  - {{id: globex, name: Globex Ltd, email: it@globex.example, language: en,
     timezone: Europe/London, services: [tracking]}}
  - {{id: initech, name: Initech, email: support@initech.example, language: fr,
     services: [labels]}}
notices:
  from: "Support Transporteur <support@carrier.example>"
  transport: smtp
  smtp: {{host: 127.0.0.1, port: {smtp}, timeout: 10s}}
  customer_delay: 0s
  digest_window: 1s
  update_every: 12s
  stable_for: 8s
  ops: [{{type: webhook, url: "http://127.0.0.1:{carrier}/ops-hook"}}]
"""


IDENTIFIED = Words.of(
    {
        "fr": "Le transporteur a identifié une panne de sa base de suivi ; "
        "rétablissement en cours.",
        "en": "The carrier found a failure of its tracking database; recovery is under way.",
    }
)


class Carrier:
    """A simulated carrier: a JSON tracking API and a label endpoint that can be broken."""

    def __init__(self) -> None:
        self.tracking_broken = False
        self.on_ops: Callable[[str], None] = print
        self.app = web.Application()
        self.app.router.add_get("/tracking/v2/parcels/{parcel}", self.track)
        self.app.router.add_post("/labels/v1/generate", self.label)
        self.app.router.add_post("/ops-hook", self.ops_hook)

    async def track(self, request: web.Request) -> web.Response:
        """Parcel events, or a 503 while broken."""
        if self.tracking_broken:
            return web.json_response({"status": "KO", "error": "backend unavailable"}, status=503)
        parcel = request.match_info["parcel"]
        return web.json_response(
            {
                "parcelNumber": parcel,
                "status": "OK",
                "events": [{"code": "DR1", "label": "Colis livré"}],
            }
        )

    async def label(self, request: web.Request) -> web.Response:
        """A label reference for any shipment."""
        return web.json_response({"label": "LBL-000042", "format": "PDF"})

    async def ops_hook(self, request: web.Request) -> web.Response:
        """The ops team's chat webhook (Slack-compatible JSON)."""
        body = await request.json()
        self.on_ops(str(body.get("text", "")).splitlines()[0])
        return web.Response(text="ok")


def keep(item: ReceivedMessage, folder: Path) -> Path:
    """Write a received email as ``NN.eml``, byte for byte as it was sent."""
    path = folder / f"{len(list(folder.iterdir())) + 1:02d}.eml"
    path.write_bytes(item.raw)
    return path


async def run_demo(directory: Path | None = None, linger: float = 0.0) -> int:
    """Run the whole demo; returns 0 when every expected email arrived.

    ``linger`` keeps the daemon and the simulated services up that many seconds afterwards,
    so the status page can still be looked at.
    """
    base = directory or Path(tempfile.mkdtemp(prefix="forewarn-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    mail_dir = base / "received"
    mail_dir.mkdir(exist_ok=True)
    carrier = Carrier()
    runner = web.AppRunner(carrier.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    carrier_port = runner.addresses[0][1]
    started = time.monotonic()

    def stamp() -> str:
        return f"[{time.monotonic() - started:5.1f}s]"

    carrier.on_ops = lambda line: print(f"{stamp()}   #  ops webhook: {line}")

    def received(item: ReceivedMessage) -> None:  # called by the sink for each accepted email
        message = item.message
        keep(item, mail_dir)
        language = message.get("Content-Language", "?")
        print(f"{stamp()}   ✉  {message['To']:<24} ({language})  {message['Subject']}")
        if len(sink.messages) == 1:  # show one whole email, as the customer reads it
            body = message.get_body(("plain",))
            text = body.get_content() if isinstance(body, EmailMessage) else ""
            print("\n".join(f"          │ {line}" for line in text.rstrip().splitlines()))

    async with SmtpSink(on_message=received) as sink:
        config_path = base / "checks.yaml"
        config_path.write_text(
            DEMO_CONFIG.format(
                state=base / "state", carrier=carrier_port, smtp=sink.port, web=_free_port()
            ),
            encoding="utf-8",
        )
        config = load_config(config_path)
        daemon = Daemon(config)
        await daemon.start()
        _intro(config, daemon.port, carrier_port, sink.port)
        try:
            ok = await _script(carrier, daemon, sink, stamp)
            if linger > 0:
                print(
                    f"\n  the status page stays at http://127.0.0.1:{daemon.port}/ for {linger:g} s"
                )
                await asyncio.sleep(linger)
        finally:
            metrics = await _fetch(daemon.port, "/metrics")
            await daemon.stop()
            await runner.cleanup()
    (base / "metrics.txt").write_text(metrics, encoding="utf-8")
    _outro(base, mail_dir, metrics, len(sink.messages))
    return 0 if ok else 1


async def _script(
    carrier: Carrier, daemon: Daemon, sink: SmtpSink, stamp: Callable[[], str]
) -> bool:
    """Break tracking, let the operator speak, restore it, wait for the resolution."""
    await asyncio.sleep(6)
    print(f"{stamp()}  ▶ Breaking the carrier's tracking API: it now answers 503 {{status: KO}}")
    carrier.tracking_broken = True
    if not await _until(lambda: _sent(sink, "first") >= 2, 30):
        return False
    print(f"{stamp()}   ◉  status page: {await _page_states(daemon.port)}")
    incident = daemon.engine.covering("tracking")
    assert incident is not None
    command = f"forewarn incidents identify {incident.id} --message-fr … --message-en …"
    print(f"{stamp()}  ▶ The operator runs: {command}")
    daemon.desk.act(incident.id, OperatorAction.IDENTIFY, IDENTIFIED)
    if not await _until(lambda: _sent(sink, "update") >= 4, 40):
        return False
    print(f"{stamp()}  ▶ Restoring the tracking API")
    carrier.tracking_broken = False
    if not await _until(lambda: _sent(sink, "resolved") >= 2, 40):
        return False
    print(f"{stamp()}   ◉  status page: {await _page_states(daemon.port)}")
    return True


async def _page_states(port: int) -> str:
    """Each service's state as the public status page shows it, from its JSON twin."""
    status = json.loads(await _fetch(port, "/api/v1/status"))
    return ", ".join(f"{s['id']} {s['state']}" for s in status["services"])


def _free_port() -> int:
    """A free port for the daemon, known before it starts so the emails can link to it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _sent(sink: SmtpSink, kind: str) -> int:
    return sum(1 for m in sink.messages if m.message["X-Forewarn-Kind"] == kind)


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            print("  ✗ timed out waiting for the expected emails")
            return False
        await asyncio.sleep(0.1)
    return True


async def _fetch(port: int, path: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return await response.text()


def _intro(config: Config, daemon_port: int, carrier_port: int, smtp_port: int) -> None:
    print("forewarn demo — a carrier's web services, watched for three customers\n")
    print(f"  simulated carrier   http://127.0.0.1:{carrier_port}/ (tracking + labels)")
    print(f"  local SMTP server   127.0.0.1:{smtp_port}")
    print(f"  status page         http://127.0.0.1:{daemon_port}/  (open it while the demo runs)")
    print(f"  forewarn metrics    http://127.0.0.1:{daemon_port}/metrics")
    print(f"  forewarn health     http://127.0.0.1:{daemon_port}/healthz")
    for customer in config.customers:
        print(
            f"  customer {customer.id:<8} {', '.join(customer.email):<24} {customer.language}  "
            f"subscribed to {', '.join(customer.services)}"
        )
    print()


def _outro(base: Path, mail_dir: Path, metrics: str, count: int) -> None:
    sent = [
        line
        for line in metrics.splitlines()
        if line.startswith("forewarn_notices_total{") and not line.endswith(" 0.0")
    ]
    print(f"\n{count} emails received; initech (labels only) received none, as it should.")
    print(f"  the emails      {mail_dir}/*.eml")
    print(f"  the config      {base / 'checks.yaml'}")
    print(f"  the state       {base / 'state' / 'forewarn.db'}")
    print(f"  the metrics     {base / 'metrics.txt'}")
    for line in sent:
        print(f"    {line}")
