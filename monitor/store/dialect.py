"""One SQL text for SQLite and PostgreSQL: each statement is spelled for both once, at import.

Statements are written with ``?`` placeholders (SQLite's) and a few ``{token}`` words for
what the dialects name differently; ``sql()`` renders both spellings up front, so no call
translates anything. Code that runs a statement gets a ``Db``: the backend's adapter picks
its spelling.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# What a {token} becomes in each dialect. rowid/ctid name a row physically, for a bounded
# DELETE (neither has DELETE … LIMIT); SQLite's writer holds the whole database, so a
# claim needs no row locks there, whereas PostgreSQL's must skip rows another instance holds.
_TOKENS: dict[str, dict[str, str]] = {
    "sqlite": {"{rowid}": "rowid", "{skip_locked}": ""},
    "postgresql": {"{rowid}": "ctid", "{skip_locked}": "FOR UPDATE SKIP LOCKED"},
}


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement in both spellings."""

    sqlite: str
    postgresql: str


def sql(text: str) -> Sql:
    """``text`` (``?`` placeholders, ``{token}`` words) rendered for both dialects."""
    rendered = {}
    for dialect, tokens in _TOKENS.items():
        out = text
        for token, word in tokens.items():
            out = out.replace(token, word)
        rendered[dialect] = out
    return Sql(rendered["sqlite"], _pyformat(rendered["postgresql"]))


def _pyformat(text: str) -> str:
    """``?`` placeholders as psycopg's ``%s``; a literal ``%`` doubled (outside quotes alike)."""
    out: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted  # '' inside a literal toggles twice: still inside
        if char == "%":
            out.append("%%")  # psycopg reads every % of a statement given parameters
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


class Rows(Protocol):
    """What a statement's cursor offers: its rows and how many rows it changed."""

    @property
    def rowcount(self) -> int:
        """Rows the statement inserted, updated or deleted."""
        ...

    def fetchone(self) -> Any:
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        ...

    def fetchmany(self, size: int) -> list[Any]:
        """At most ``size`` more rows."""
        ...


class Db(Protocol):
    """A connection as the shared store code uses it, in one dialect."""

    def execute(self, statement: Sql, params: Sequence[Any] = ()) -> Rows:
        """Run one statement."""
        ...

    def executemany(self, statement: Sql, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        ...


class SqliteDb:
    """``Db`` on a sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, statement: Sql, params: Sequence[Any] = ()) -> Rows:
        """Run one statement."""
        return self.conn.execute(statement.sqlite, params)

    def executemany(self, statement: Sql, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        self.conn.executemany(statement.sqlite, rows)
