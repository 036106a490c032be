"""Shared fixtures: checks.yaml files loaded for real, stores of every backend, local servers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
import structlog
import uvloop

from monitor.config.load import Config, load_config
from monitor.daemon import Daemon
from monitor.store.base import Store
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests.operator_scene import (
    CUSTOMERS_YAML,
    ConfigWriter,
    Target,
    config_writer,
    daemons,
    serving_target,
)
from tests.postgres_server import PostgresServer, running_postgres
from tests.smtp_server import FailingSmtpServer
from tests.webhook_receiver import Receiver, serving

StoreOpener = Callable[[Path, ZoneInfo], Store]
"""Opens (creating) a backend's store in a state folder, summing days in a zone."""


def _sqlite(_: pytest.FixtureRequest) -> StoreOpener:
    return SqliteStore.open


def _postgres(request: pytest.FixtureRequest) -> StoreOpener:
    dsn: str = request.getfixturevalue("pg_dsn")  # this test's own database
    return lambda _state, zone: PostgresStore.open(dsn, zone)


# Every Store backend, by name, as a fixture request gives it an opener: tests taking
# ``store`` run once per line, and every backend must pass tests/test_store_contract.py.
STORE_BACKENDS: dict[str, Callable[[pytest.FixtureRequest], StoreOpener]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}
TEMPLATE = "forewarn_template"  # migrated once per session; each test's database copies it
_databases = itertools.count(1)

MINIMAL = (
    """\
daemon: {{state_dir: {state}, listen: "127.0.0.1:0", public_url: "https://status.example.net",
         timezone: Europe/Paris{daemon_extra}}}
defaults: {{interval: {interval}, timeout: {timeout}, retry_interval: {retry},
           failure_threshold: 3, success_threshold: 2}}
services:
  - {{id: tracking, name: {{fr: Suivi de colis, en: Parcel tracking}}}}
  - {{id: labels, name: {{fr: Étiquettes, en: Shipping labels}}}}
checks:
  - {{id: tracking-ws, service: tracking, type: http, url: "{tracking_url}",
     expect: {{status: [200], body_contains: parcelNumber}}}}
  - {{id: labels-ws, service: labels, type: http, url: "{labels_url}"}}
"""
    + CUSTOMERS_YAML
    + """\
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
)

ConfigFactory = Callable[..., Config]

# The event loops an async test runs on: asyncio's alone, as ``forewarn run`` uses without
# the ``fast`` extra; tests marked ``both_loops`` run once more on uvloop's, as it uses with.
LoopFactories = dict[str, Callable[[], asyncio.AbstractEventLoop]]
_ASYNCIO: LoopFactories = {"asyncio": asyncio.new_event_loop}
_BOTH: LoopFactories = {**_ASYNCIO, "uvloop": uvloop.new_event_loop}


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> LoopFactories:
    """Loop factories for ``item``: uvloop's too where the test is marked ``both_loops``."""
    return _BOTH if item.get_closest_marker("both_loops") else _ASYNCIO


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
            "daemon_extra": "",  # more daemon: keys, each written ", key: value"
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


@pytest.fixture
def store_zone(request: pytest.FixtureRequest) -> ZoneInfo:
    """The zone stores sum days in: a module's ``STORE_ZONE``, else UTC."""
    zone = getattr(request.module, "STORE_ZONE", None)
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL for the session, with a migrated template database."""
    with running_postgres() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        PostgresStore.open(server.dsn_of(TEMPLATE)).close()
        yield server


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database of the session's server for this test alone."""
    name = f"test_{next(_databases)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        # FILE_COPY: copying a small template's files beats logging them (fsync is off).
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    yield pg_server.dsn_of(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=sorted(STORE_BACKENDS))
def open_store(request: pytest.FixtureRequest) -> StoreOpener:
    """How to open a store of the backend under test (to reopen one, for instance)."""
    return STORE_BACKENDS[request.param](request)


@pytest.fixture
def store(open_store: StoreOpener, tmp_path: Path, store_zone: ZoneInfo) -> Iterator[Store]:
    """A store of each backend on a fresh state folder, closed after the test."""
    opened = open_store(tmp_path / "state", store_zone)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, store_zone: ZoneInfo) -> Iterator[SqliteStore]:
    """The SQLite backend itself, for tests that read its tables or files."""
    opened = SqliteStore.open(tmp_path / "state", store_zone)
    yield opened
    opened.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real webhook receiver on 127.0.0.1 whose answer the test chooses."""
    async with serving() as state:
        yield state


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """Tracking and labels APIs on 127.0.0.1 that the test can break and restore."""
    async with serving_target() as state:
        yield state


@pytest.fixture
def write_config(tmp_path: Path, target: Target, smtp: FailingSmtpServer) -> ConfigWriter:
    """Write the operator scene's checks.yaml (API on a free port, tokens beside it); load it."""
    return config_writer(tmp_path, target, smtp)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Config], Awaitable[Daemon]]]:
    """Start Daemons on this loop; each is stopped after the test."""
    async with daemons() as start:
        yield start


@pytest.fixture
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the daemon's log lines off the CLI's stdout; no token from the environment."""
    monkeypatch.delenv("FOREWARN_TOKEN", raising=False)
    with structlog.testing.capture_logs():
        yield
