"""The PostgreSQL connection: a lost server fails calls fast and is found again; passwords.

The reconnect test stops and restarts a server of its own (the session's serves the rest).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
import structlog

from monitor.config.load import ConfigError, load_config
from monitor.store.base import StoreUnavailable
from monitor.store.pgconnect import RECONNECT_EVERY_S, Link, conninfo
from monitor.store.postgres import PostgresStore
from tests.builders import NOW, make_notice
from tests.postgres_server import PostgresServer, running_postgres

UTC = ZoneInfo("UTC")
SECRET = "s3cret-Pa55word-for-tests"
PW_USER = "pwuser"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server this module may stop and start."""
    with running_postgres() as server:
        yield server


def test_a_stopped_server_fails_calls_at_once_and_a_restarted_one_is_used_again(
    own_server: PostgresServer,
) -> None:
    """Lost: one error naming the loss; then no attempt before the retry delay; then back."""
    PostgresStore.open(own_server.dsn).close()  # migrated
    clock = Clock()
    link = Link(own_server.dsn, clock=clock)
    store = PostgresStore(link, UTC)
    try:
        store.commit(notices=[make_notice("a", NOW)])
        assert link.attempts == 1
        own_server.stop()  # fast: the commit above, written without fsync, is kept
        with pytest.raises(StoreUnavailable, match="lost the PostgreSQL connection"):
            store.pending_count()
        with pytest.raises(StoreUnavailable, match="PostgreSQL unreachable"):
            store.write_results([])  # the one reconnect attempt, refused
        assert link.attempts == 2
        clock.now += RECONNECT_EVERY_S / 2
        for _ in range(20):  # a dead server costs these calls no network at all
            with pytest.raises(StoreUnavailable, match="retry in"):
                store.next_attempt_at()
        assert link.attempts == 2
        own_server.start()
        clock.now += RECONNECT_EVERY_S
        assert store.pending_count() == 1  # reconnected: the committed notice is there
        assert link.attempts == 3
        store.mark_sent("a", NOW + 1)
        assert store.pending_count() == 0
    finally:
        store.close()


def test_a_statement_error_keeps_the_connection(pg_dsn: str) -> None:
    """An error of the statement itself is raised as is, and the next call needs no reconnect."""
    store = PostgresStore.open(pg_dsn, UTC)
    try:
        with pytest.raises(KeyError):
            store.mark_sent("missing", NOW)
        with pytest.raises(psycopg.errors.UndefinedTable), store.link.guarded() as conn:
            conn.execute("SELECT * FROM no_such_table")
        assert store.pending_count() == 0
        assert store.link.attempts == 1
    finally:
        store.close()


def test_a_dsn_keeps_its_own_settings_over_the_fail_fast_defaults() -> None:
    """connect_timeout and friends are added only where the DSN says nothing."""
    info = conninfo("postgresql://u@h1:5432,h2:5433/db?connect_timeout=2&target_session_attrs=any")
    parts = dict(p.split("=", 1) for p in info.split())
    assert parts["connect_timeout"] == "2" and parts["target_session_attrs"] == "any"
    assert parts["host"] == "h1,h2" and parts["port"] == "5432,5433"
    assert parts["tcp_user_timeout"] == "10000" and "password" not in parts


@pytest.fixture
def password_user(pg_server: PostgresServer, pg_dsn: str) -> Iterator[str]:
    """A role that must give SECRET (SCRAM) to reach this test's database; its DSN."""
    hba = pg_server.data / "pg_hba.conf"
    rules = hba.read_text(encoding="utf-8")
    hba.write_text(f"host all {PW_USER} 127.0.0.1/32 scram-sha-256\n{rules}", encoding="utf-8")
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {PW_USER} LOGIN PASSWORD '{SECRET}'")
        conn.execute("SELECT pg_reload_conf()")
    database = pg_dsn.rsplit("/", 1)[1]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {PW_USER}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {PW_USER}")
    dsn = f"postgresql://{PW_USER}@127.0.0.1:{pg_server.port}/{database}"
    deadline = time.monotonic() + 10
    while _connects_without_password(dsn):  # the reload applies asynchronously
        assert time.monotonic() < deadline, "pg_hba.conf reload not applied"
        time.sleep(0.05)
    yield dsn
    hba.write_text(rules, encoding="utf-8")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {PW_USER}")  # its grants, in this database
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(f"DROP ROLE {PW_USER}")


def _connects_without_password(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def test_the_password_file_opens_a_password_protected_database(
    password_user: str, tmp_path: Path
) -> None:
    """The file's password reaches libpq; it shows in no repr, config or log line."""
    (tmp_path / "db-password").write_text(SECRET + "\n", encoding="utf-8")
    path = tmp_path / "checks.yaml"
    path.write_text(
        f"daemon: {{database: '{password_user}', database_password_file: db-password}}\n"
        "services: [{id: t, name: T}]\n"
        "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n",
        encoding="utf-8",
    )
    with structlog.testing.capture_logs() as logs:
        config = load_config(path)
        assert config.daemon.database_password == SECRET
        store = PostgresStore.open(password_user, UTC, password=config.daemon.database_password)
    try:
        store.commit(notices=[make_notice("a", NOW)])
        assert store.pending_count() == 1
        shown = [repr(config), repr(config.daemon), repr(store), repr(store.link), str(logs)]
        assert all(SECRET not in text for text in shown)
    finally:
        store.close()


def test_a_wrong_or_missing_password_is_refused_without_showing_it(password_user: str) -> None:
    """libpq's refusal becomes StoreUnavailable; the password tried is not in the message."""
    with pytest.raises(StoreUnavailable, match="password") as wrong:
        PostgresStore.open(password_user, UTC, password=SECRET[::-1])
    assert SECRET[::-1] not in str(wrong.value)
    with pytest.raises(StoreUnavailable, match="password"):
        PostgresStore.open(password_user, UTC)


def test_an_inline_password_is_refused_at_load(tmp_path: Path) -> None:
    """check-config says where the password should go, and never repeats it."""
    path = tmp_path / "checks.yaml"
    path.write_text(
        "services: [{id: t, name: T}]\n"
        "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
        f"daemon: {{database: 'postgresql://u:{SECRET}@db.example.net/forewarn'}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.errors == [
        f"{path}:3: daemon.database: must not hold a password: put it in a file named by "
        "daemon.database_password_file, or in ~/.pgpass (PGPASSFILE)"
    ]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung server, not a stopped one."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshakes; nobody ever reads
        yield listener.getsockname()[1]


def test_a_background_link_never_waits_for_a_server_that_does_not_answer(
    silent_server: int,
) -> None:
    """The daemon's links reconnect on a thread: each call raises at once while it hangs."""
    timeout_s = 2  # libpq's connect_timeout here: what a call on the loop would have waited
    dsn = f"postgresql://forewarn@127.0.0.1:{silent_server}/forewarn?connect_timeout={timeout_s}"
    link = Link(dsn, background=True)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="reconnecting"):
            link.connection()
        with pytest.raises(StoreUnavailable, match="still reconnecting"):
            link.connection()
        assert time.monotonic() - started < timeout_s / 2  # half the hang it would have cost
        assert link.attempts == 1  # one attempt in flight, however often it is asked

        def failed() -> bool:
            try:
                link.connection()
            except StoreUnavailable as exc:
                return "unreachable" in str(exc)
            return False

        deadline = time.monotonic() + 10 * timeout_s  # only a hang fails this
        while not failed():
            assert time.monotonic() < deadline, "the background attempt never ended"
            time.sleep(0.05)
        with pytest.raises(StoreUnavailable, match="retry in"):
            link.connection()  # then the usual pace: no new attempt before the retry delay
        assert link.attempts == 1
    finally:
        link.close()


def test_a_background_link_is_used_again_once_the_server_answers(pg_dsn: str) -> None:
    """Once the background connection is made, the next call gets it."""
    link = Link(pg_dsn, background=True)
    try:
        with pytest.raises(StoreUnavailable, match="reconnecting"):
            link.connection()
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = link.connection()
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "never connected"
                time.sleep(0.05)
        assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        link.close()
