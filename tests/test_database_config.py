"""daemon.database and daemon.database_password_file: what loads, and what is refused where."""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config.load import ConfigError, load_config
from monitor.config.reload import restart_needed
from monitor.store.opening import DriverMissing, open_store

HEAD = (
    "services: [{id: t, name: T}]\n"
    "checks: [{id: c, service: t, type: http, url: 'https://x.example.net/'}]\n"
)


def write(tmp_path: Path, daemon: str) -> Path:
    """A checks.yaml whose third line is ``daemon: {<daemon>}``."""
    path = tmp_path / "checks.yaml"
    path.write_text(HEAD + f"daemon: {{{daemon}}}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://forewarn@db.example.net:5432/forewarn",
        "postgres://forewarn@db1.example.net,db2.example.net/forewarn"
        "?target_session_attrs=read-write",
        "host=db.example.net dbname=forewarn user=forewarn sslmode=verify-full",
        "postgresql:///forewarn?host=/run/postgresql",
    ],
)
def test_libpq_uris_and_settings_load_as_written(tmp_path: Path, dsn: str) -> None:
    """URIs (several hosts too) and key=value settings are kept exactly as written."""
    config = load_config(write(tmp_path, f"database: '{dsn}'"))
    assert config.daemon.database == dsn
    assert config.daemon.database_password is None


def test_no_database_means_sqlite(tmp_path: Path) -> None:
    """Without the key, the daemon keeps its SQLite store in state_dir."""
    assert load_config(write(tmp_path, "timezone: UTC")).daemon.database is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "mysql://forewarn@db.example.net/forewarn",
            "mysql:// is not a PostgreSQL URI: write one such as "
            "postgresql://forewarn@db.example.net:5432/forewarn",
        ),
        (
            "db.example.net",
            "must be a PostgreSQL URI such as postgresql://forewarn@db.example.net:5432/forewarn"
            ", or libpq settings such as 'host=db.example.net dbname=forewarn user=forewarn'",
        ),
        (
            "host=db.example.net nosuchsetting=1",
            "libpq cannot read it: invalid connection option …",
        ),
        (
            "host=db.example.net password=hunter2",
            "must not hold a password: put it in a file named by "
            "daemon.database_password_file, or in ~/.pgpass (PGPASSFILE)",
        ),
        (
            "postgresql://db.example.net/forewarn?password=hunter2",
            "must not hold a password: put it in a file named by "
            "daemon.database_password_file, or in ~/.pgpass (PGPASSFILE)",
        ),
    ],
)
def test_a_bad_database_names_file_line_and_key(tmp_path: Path, value: str, message: str) -> None:
    """The error is file:line: daemon.database: why, without quoting the value."""
    path = write(tmp_path, f"database: '{value}'")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.errors == [f"{path}:3: daemon.database: {message}"]
    assert "hunter2" not in str(refused.value)


def test_a_password_file_needs_a_database_and_a_readable_file(tmp_path: Path) -> None:
    """Without daemon.database the file is pointless; an unreadable one is refused at load."""
    (tmp_path / "pw").write_text("hunter2\n", encoding="utf-8")
    path = write(tmp_path, "database_password_file: pw")
    with pytest.raises(ConfigError) as alone:
        load_config(path)
    assert alone.value.errors == [
        f"{path}:3: daemon.database_password_file: is for daemon.database, which is not set"
    ]
    path = write(tmp_path, "database: 'host=db.example.net', database_password_file: missing")
    with pytest.raises(ConfigError) as missing:
        load_config(path)
    (line,) = missing.value.errors
    assert line.startswith(f"{path}:3: daemon.database_password_file: cannot read {tmp_path}")


def test_a_new_database_waits_for_a_restart(tmp_path: Path) -> None:
    """A reload cannot move a running daemon to another database: it says a restart is due."""
    old = load_config(write(tmp_path, "database: 'host=a.example.net'"))
    new = load_config(write(tmp_path, "database: 'host=b.example.net'"))
    assert restart_needed(old.source, old, new) == [
        f"{old.source}: daemon.database: changed from host=a.example.net to host=b.example.net; "
        "restart forewarn to apply it"
    ]


def test_without_psycopg_the_database_key_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No driver: check-config and the store opener both name the extra to install."""
    for name in ("psycopg", "psycopg.conninfo", "monitor.store.postgres"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    path = write(tmp_path, "database: 'host=db.example.net'")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.errors == [
        f"{path}:3: daemon.database: needs the PostgreSQL driver, psycopg: "
        "pip install 'forewarn[postgresql]'"
    ]
    with pytest.raises(DriverMissing, match=r"pip install 'forewarn\[postgresql\]'"):
        open_store(tmp_path, ZoneInfo("UTC"), "host=db.example.net")
