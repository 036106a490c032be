"""A real PostgreSQL for the tests: Debian's server, a throwaway cluster in a temporary folder.

The cluster belongs to an unprivileged user (PostgreSQL refuses to run as root: as root the
tests run it as ``postgres``, the user Debian's package creates), listens on 127.0.0.1 only on
a free port, trusts local connections and keeps nothing: ``fsync`` is off, because the tests
stop and restart the server, never the machine. ``tests/debian-packages.sh`` installs the
package where it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "forewarn"  # the cluster's superuser, which the tests connect as
DATABASE = "forewarn"


def server_bin() -> Path:
    """The folder of Debian's newest PostgreSQL server programs (initdb, pg_ctl)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise FileNotFoundError("no PostgreSQL server: run sh tests/debian-packages.sh")
    return Path(initdb).resolve().parent


def _version(initdb: Path) -> int:
    name = initdb.parent.parent.name
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One throwaway PostgreSQL cluster; ``dsn`` reaches its ``forewarn`` database."""

    folder: Path
    port: int
    bin: Path

    @property
    def dsn(self) -> str:
        """A libpq connection URI for the test database."""
        return self.dsn_of(DATABASE)

    def dsn_of(self, database: str) -> str:
        """A libpq connection URI for another database of the cluster."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.folder / "data"

    def _run(self, *args: str) -> None:
        """Run a server program as the cluster's owner; its output goes to the log."""
        owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with (self.folder / "programs.log").open("ab") as log:
            subprocess.run([*owner, *args], check=True, stdout=log, stderr=log, timeout=60)

    def init(self) -> None:
        """Create the cluster: trust on loopback, UTF-8, no locale."""
        initdb = str(self.bin / "initdb")
        self._run(initdb, "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-instructions")  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "server.log"), "-o", options, "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is as close to a crash as PostgreSQL gets)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self) -> None:
        """The empty database the tests use."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", USER, DATABASE)  # fmt: skip


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started cluster in a fresh temporary folder, stopped and removed on the way out.

    The folder is made directly under the system's temporary directory, not under pytest's
    (which only root may enter), because as root the cluster runs as ``postgres``.
    """
    folder = Path(tempfile.mkdtemp(prefix="forewarn-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    server = PostgresServer(folder, _free_port(), server_bin())
    try:
        server.init()
        server.start()
        try:
            server.create_database()
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
