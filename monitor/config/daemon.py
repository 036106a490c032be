"""The ``daemon:`` section: where forewarn keeps its state and how it is reached."""

from __future__ import annotations

import socket
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config.database import check_dsn
from monitor.core.fields import Duration, StrictModel, check_zone, http_url
from monitor.probes.files import read_secret


class DaemonConfig(StrictModel):
    """Where the daemon keeps its state and how it is reached."""

    state_dir: Path = Path("./state")
    listen: str = "127.0.0.1:9470"
    # With it, `listen` serves only the public face and this one /metrics, /healthz, the
    # operator API and heartbeats; without it, everything stays on `listen`.
    admin_listen: str | None = None
    public_url: str = "http://127.0.0.1:9470"
    timezone: str = "Europe/Paris"
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 500
    # Probe worker processes: "auto" runs one per core once checks need ≥ 200 probes/s.
    probe_workers: Literal["auto"] | Annotated[int, Field(ge=0, le=256)] = "auto"
    api_tokens_file: Path | None = None  # operator API bearer tokens; no file, no API
    retention: Duration = 7 * 86400.0  # raw results kept; aggregates outlive them
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list, max_length=256)
    # Connections a listener holds at once, in all and per client address; the open-file
    # limit lowers both so that probes always keep descriptors (monitor/fdlimit.py).
    max_connections: Annotated[int, Field(ge=8, le=1_000_000)] = 1000
    max_connections_per_address: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    # A connection must send a whole request head within this, and is closed when idle
    # this long between requests.
    header_timeout: Duration = 10.0
    # A PostgreSQL that several instances share (a postgresql:// URI or libpq key=value
    # settings, never with a password); none: SQLite in state_dir.
    database: str | None = None
    database_password_file: Path | None = None  # read at load; libpq's ~/.pgpass works too
    _database_password: SecretStr | None = PrivateAttr(None)
    # Several instances on one `database` (ignored on SQLite): where this one probes from,
    # how often it renews its lease (silent after two missed), from how many locations each
    # check is probed, and a dead-man's switch pinged while this instance is healthy.
    location: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")] = Field(
        default_factory=lambda: socket.gethostname().split(".")[0][:63] or "here"
    )
    lease_period: Duration = 5.0
    probe_from: Annotated[int, Field(ge=1, le=16)] = 2
    heartbeat_url: str | None = None
    heartbeat_every: Duration = 60.0

    @field_validator("database")
    @classmethod
    def _postgres(cls, value: str | None) -> str | None:
        return None if value is None else check_dsn(value)

    @field_validator("database_password_file")
    @classmethod
    def _password_readable(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        if "database" not in info.data:
            return path  # database itself was refused: said once, there
        if info.data["database"] is None:
            raise ValueError("is for daemon.database, which is not set")
        read_secret(str(path))
        return path

    @model_validator(mode="after")
    def _read_password(self) -> DaemonConfig:
        if self.database_password_file is not None:
            self._database_password = SecretStr(read_secret(str(self.database_password_file)))
        return self

    @property
    def database_password(self) -> str | None:
        """The password ``database_password_file`` holds, or None (libpq looks for one)."""
        secret = self._database_password
        return None if secret is None else secret.get_secret_value()

    @field_validator("listen", "admin_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not (sep and host and port.isascii() and port.isdigit() and int(port) <= 65535):
            raise ValueError("must be host:port, such as 127.0.0.1:9470")
        return value

    @field_validator("lease_period")
    @classmethod
    def _lease_range(cls, value: float) -> float:
        # Under 0.5 s the renewals alone load the database; over a minute a dead instance's
        # checks wait minutes for another prober.
        if not 0.5 <= value <= 60:
            raise ValueError("must be between 500ms and 1m")
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("heartbeat_every")
    @classmethod
    def _heartbeat_pace(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("retention")
    @classmethod
    def _keeps_an_hour(cls, value: float) -> float:
        # Raw results are what an operator reads to investigate a fresh incident.
        if value < 3600:
            raise ValueError("must be at least 1h")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @property
    def listen_host(self) -> str:
        """The host part of ``listen``."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """The port part of ``listen``."""
        return int(self.listen.rpartition(":")[2])

    def is_exposed(self) -> bool:
        """True when ``listen`` may be reached from other hosts (not a loopback address)."""
        host = self.listen_host
        if host == "localhost":
            return False
        try:
            return not ip_address(host).is_loopback
        except ValueError:
            return True  # a name, or "" (every address)
