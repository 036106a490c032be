"""Shared fixtures: small checks.yaml files written to tmp dirs and loaded for real."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from monitor.config.load import Config, load_config
from tests.smtp_server import FailingSmtpServer

MINIMAL = """\
daemon: {{state_dir: {state}, listen: "127.0.0.1:0", public_url: "https://status.example.net",
         timezone: Europe/Paris}}
defaults: {{interval: {interval}, timeout: {timeout}, retry_interval: {retry},
           failure_threshold: 3, success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{tracking_url}",
     expect: {{status: [200], body_contains: parcelNumber}}}}
  - {{id: labels-ws, service: labels, type: http, url: "{labels_url}"}}
customers:
  - {{id: acme, name: ACME Boutique, email: ops@acme.example, language: fr,
     services: [tracking, labels]}}
  - {{id: globex, name: Globex Ltd, email: it@globex.example, language: en,
     timezone: Europe/London, services: [tracking]}}
  - {{id: initech, name: Initech, email: support@initech.example, language: fr,
     services: [labels]}}
notices:
  from: "Support <support@example.net>"
  transport: {transport}
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout: 5s}}
  customer_delay: {customer_delay}
  update_every: {update_every}
  stable_for: {stable_for}
  retry_initial: {retry_initial}
  digest_window: {digest_window}
{extra}"""

ConfigFactory = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Write a small two-service, three-customer checks.yaml and load it."""

    def make(**overrides: object) -> Config:
        values: dict[str, object] = {
            "state": tmp_path / "state",
            "interval": "30s",
            "timeout": "2s",
            "retry": "5s",
            "tracking_url": "http://127.0.0.1:9/tracking",
            "labels_url": "http://127.0.0.1:9/l",
            "transport": "file",
            "smtp_port": 25,
            "customer_delay": "0s",
            "update_every": "30m",
            "stable_for": "5m",
            "retry_initial": "5s",
            "digest_window": "0s",
            "extra": "",  # more top-level YAML, such as a maintenance: section
        }
        values.update(overrides)
        path = tmp_path / "checks.yaml"
        path.write_text(MINIMAL.format(**values), encoding="utf-8")
        return load_config(path)

    return make


@pytest.fixture
async def smtp() -> AsyncIterator[FailingSmtpServer]:
    """A real SMTP server on 127.0.0.1 (a free port) that records what it accepts."""
    async with FailingSmtpServer() as server:
        yield server
