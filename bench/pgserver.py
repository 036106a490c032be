"""A throwaway PostgreSQL for the benchmarks: Debian's server in a temporary folder.

A minimal copy of ``tests/postgres_server.py`` (bench does not import from tests/): the cluster
belongs to the ``postgres`` user when we are root (PostgreSQL refuses to run as root), listens
on 127.0.0.1 only, on a free port, and trusts local connections. Unlike the tests' server it
keeps PostgreSQL's durable defaults (``fsync``, ``synchronous_commit`` on): the figures are a
production server's, commit flushes included. ``tests/debian-packages.sh`` installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.nginx import ToolMissing, free_port

USER = "forewarn"


def server_bin() -> Path:
    """The folder of Debian's newest PostgreSQL server programs."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise ToolMissing("no PostgreSQL server: run sh tests/debian-packages.sh")
    return found[-1].parent


@dataclass
class Postgres:
    """One running throwaway cluster."""

    folder: Path
    port: int
    bin: Path

    def dsn(self, database: str) -> str:
        """A libpq URI for ``database``."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str) -> None:
        """A server program, as the cluster's owner."""
        owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with (self.folder / "programs.log").open("ab") as log:
            subprocess.run([*owner, *args], check=True, stdout=log, stderr=log, timeout=120)  # noqa: S603

    def create(self, database: str) -> str:
        """A new empty database; its DSN."""
        self.run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", USER, database)  # fmt: skip
        return self.dsn(database)

    @property
    def pid(self) -> int:
        """The postmaster's pid (its backends are its children)."""
        text = (self.folder / "data" / "postmaster.pid").read_text(encoding="ascii")
        return int(text.split()[0])


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A started cluster for the block's duration, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    server = Postgres(folder, free_port(), server_bin())
    data = str(folder / "data")
    try:
        server.run(str(server.bin / "initdb"), "-D", data, "-U", USER, "--auth=trust",
                   "-E", "UTF8", "--no-locale", "--no-instructions")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {folder} -c max_connections=200"
        )
        server.run(str(server.bin / "pg_ctl"), "-D", data, "-l", str(folder / "server.log"),
                   "-o", options, "-w", "start")  # fmt: skip
        try:
            yield server
        finally:
            server.run(str(server.bin / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
