"""``daemon.database``: the PostgreSQL several instances share, read as libpq reads it.

A password never sits in checks.yaml: ``daemon.database_password_file`` names a file that
holds it, or libpq finds it itself (``~/.pgpass``, ``PGPASSFILE``, a service file).
"""

from __future__ import annotations

import re

EXAMPLE = "postgresql://forewarn@db.example.net:5432/forewarn"
SCHEMES = ("postgresql", "postgres")  # the two libpq knows
INSTALL = "pip install 'forewarn[postgresql]'"


def check_dsn(value: str) -> str:
    """``value`` if libpq can use it and it holds no password; else a ValueError saying why.

    Messages never quote the value: a password may be in it.
    """
    text = value.strip()
    scheme, sep, _ = text.partition("://")
    if sep and scheme not in SCHEMES:
        shown = scheme if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,20}", scheme) else "this"
        raise ValueError(f"{shown}:// is not a PostgreSQL URI: write one such as {EXAMPLE}")
    if not sep and "=" not in text:
        raise ValueError(
            f"must be a PostgreSQL URI such as {EXAMPLE}, or libpq settings such as "
            "'host=db.example.net dbname=forewarn user=forewarn'"
        )
    try:
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ValueError(f"needs the PostgreSQL driver, psycopg: {INSTALL}") from None
    try:
        settings = conninfo_to_dict(text)
    except Error as exc:
        raise ValueError(f"libpq cannot read it: {_unquoted(exc)}") from None
    if settings.get("password"):
        raise ValueError(
            "must not hold a password: put it in a file named by "
            "daemon.database_password_file, or in ~/.pgpass (PGPASSFILE)"
        )
    return text


def _unquoted(error: Exception) -> str:
    """libpq's complaint with what it quotes of the value left out (it may be the password)."""
    first = (str(error).strip().splitlines() or ["unreadable"])[0]
    return re.sub(r'"[^"]{2,}"', "…", first)
