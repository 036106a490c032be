"""checks.yaml → Config: strict schema, secrets from files or ${ENV}, errors with file:line."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator

from monitor.config_types import CheckBase, Duration, Identifier, StrictModel, parse_duration
from monitor.probes import PROBES
from monitor.yamlsource import Located, YamlSourceError, load_located

LANGUAGES = ("fr", "en")
Language = Literal["fr", "en"]
LocalizedText = dict[Language, str]
NonNegativeDuration = Annotated[float, Field(ge=0)]


class ConfigError(Exception):
    """A checks.yaml that cannot be used; ``errors`` holds one ``file:line: key: message`` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _zero_or_duration(value: Any) -> float:
    return 0.0 if value in (0, "0", "0s") else parse_duration(value)


DelayDuration = Annotated[NonNegativeDuration, Field(json_schema_extra={"unit": "s"})]


class DaemonConfig(StrictModel):
    """Where the daemon keeps its state and how it is reached."""

    state_dir: Path = Path("./state")
    listen: str = "127.0.0.1:9470"
    public_url: str = "http://127.0.0.1:9470"
    timezone: str = "Europe/Paris"
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 500

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port, such as 127.0.0.1:9470")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def listen_host(self) -> str:
        """The host part of ``listen``."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """The port part of ``listen``."""
        return int(self.listen.rpartition(":")[2])


class Defaults(StrictModel):
    """Timing every check inherits unless it sets its own."""

    interval: Duration = 30.0
    timeout: Duration = 10.0
    retry_interval: Duration = 5.0
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    success_threshold: Annotated[int, Field(ge=1, le=100)] = 2


class Service(StrictModel):
    """Something customers use, made of one or more checks."""

    id: Identifier
    name: LocalizedText
    depends_on: list[Identifier] = Field(default_factory=list)
    down_when: Literal["any", "all"] | Annotated[int, Field(ge=1)] = "any"

    def display_name(self, language: str) -> str:
        """The service name in ``language``, else in any language it has."""
        return self.name.get(language) or next(iter(self.name.values()))  # type: ignore[call-overload]


class Customer(StrictModel):
    """Someone to tell when their services break."""

    id: Identifier
    name: str
    email: Annotated[str, Field(pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")]
    language: Language = "fr"
    services: list[Identifier] = Field(default_factory=list)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


class SmtpConfig(StrictModel):
    """How to reach the mail server."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    tls: bool = False  # implicit TLS (port 465)
    username: str | None = None
    password_file: Path | None = None
    timeout: Duration = 30.0


class NoticesConfig(StrictModel):
    """Who sends customer notices, how, and at which pace."""

    from_: str = Field("forewarn <forewarn@localhost>", alias="from")
    transport: Literal["smtp", "file"] = "file"
    smtp: SmtpConfig = SmtpConfig()
    customer_delay: DelayDuration = 0.0
    update_every: Duration = 1800.0
    stable_for: Duration = 300.0
    default_language: Language = "fr"

    @field_validator("customer_delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> float:
        return _zero_or_duration(value)

    @field_validator("from_")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value) or "@" not in value:
            raise ValueError("must be one address such as 'Support <support@example.net>'")
        return value


class Config(StrictModel):
    """The whole validated configuration."""

    daemon: DaemonConfig = DaemonConfig()
    defaults: Defaults = Defaults()
    services: list[Service]
    checks: list[CheckBase]
    customers: list[Customer] = Field(default_factory=list)
    notices: NoticesConfig = NoticesConfig()
    source: Path = Path("checks.yaml")

    def service(self, service_id: str) -> Service:
        """The service with this id."""
        return next(s for s in self.services if s.id == service_id)

    def zone(self, customer: Customer | None = None) -> ZoneInfo:
        """The timezone a customer reads times in (the daemon's by default)."""
        return ZoneInfo((customer and customer.timezone) or self.daemon.timezone)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}") from None
    return value


def _references(config: Config, doc: Located) -> list[str]:
    """Ids are unique and every reference names something that exists."""
    errors: list[str] = []
    for section in ("services", "checks", "customers"):
        seen: set[str] = set()
        for i, item in enumerate(getattr(config, section)):
            if item.id in seen:
                errors.append(doc.where((section, i, "id"), f"duplicate id {item.id!r}"))
            seen.add(item.id)
    service_ids = {s.id for s in config.services}
    for i, service in enumerate(config.services):
        for j, dep in enumerate(service.depends_on):
            if dep not in service_ids or dep == service.id:
                errors.append(doc.where(("services", i, "depends_on", j),
                                        f"unknown service {dep!r}"))
    for i, check in enumerate(config.checks):
        if check.service not in service_ids:
            errors.append(doc.where(("checks", i, "service"),
                                    f"unknown service {check.service!r}"))
    for i, customer in enumerate(config.customers):
        for j, name in enumerate(customer.services):
            if name not in service_ids:
                errors.append(doc.where(("customers", i, "services", j),
                                        f"unknown service {name!r}"))
    return errors


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TIMING_KEYS = tuple(Defaults.model_fields)
_CSV_COLUMNS = ("id", "name", "email", "language", "services", "timezone")


def load_config(path: str | Path) -> Config:
    """Read, expand and validate a checks.yaml; raise ConfigError naming file, line and key."""
    path = Path(path)
    try:
        doc = load_located(path)
    except YamlSourceError as exc:
        raise ConfigError([str(exc)]) from None
    errors: list[str] = []
    raw = _expand_env(doc.value, doc, (), errors)
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}:1: the file must be a mapping with services and checks"])
    checks = _typed_checks(raw, doc, errors)
    customers = _customers(raw, path, doc, errors)
    if errors:
        raise ConfigError(errors)
    try:
        config = Config.model_validate(
            {**raw, "checks": checks, "customers": customers, "source": path}
        )
    except ValidationError as exc:
        raise ConfigError(_describe(exc, doc, ())) from None
    errors = _references(config, doc)
    if errors:
        raise ConfigError(errors)
    return config


def _expand_env(value: Any, doc: Located, key: tuple[Any, ...], errors: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, doc, (*key, k), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, doc, (*key, i), errors) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                errors.append(doc.where(key, f"environment variable {name} is not set"))
                return ""
            return os.environ[name]
        return _ENV.sub(sub, value)
    return value


def _typed_checks(raw: dict[str, Any], doc: Located, errors: list[str]) -> list[CheckBase]:
    """Merge defaults into each check, then validate it with its kind's own model."""
    defaults = raw.get("defaults") or {}
    items = raw.get("checks")
    if not isinstance(items, list):
        errors.append(doc.where(("checks",), "must be a list of checks"))
        return []
    typed: list[CheckBase] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(doc.where(("checks", i), "must be a mapping"))
            continue
        kind = PROBES.get(str(item.get("type")))
        if kind is None:
            known = " | ".join(sorted(PROBES))
            errors.append(doc.where(("checks", i, "type"), f"must be one of {known}"))
            continue
        merged = dict(item)
        for timing in _TIMING_KEYS:
            if timing not in merged and isinstance(defaults, dict) and timing in defaults:
                merged[timing] = defaults[timing]
            merged.setdefault(timing, getattr(Defaults(), timing))
        try:
            typed.append(kind.settings.model_validate(merged))
        except ValidationError as exc:
            errors.extend(_describe(exc, doc, ("checks", i)))
    return typed


def _customers(raw: dict[str, Any], path: Path, doc: Located,
               errors: list[str]) -> list[dict[str, Any]]:
    """Customers inline, or ``{file: customers.csv}`` relative to checks.yaml."""
    section = raw.get("customers") or []
    if isinstance(section, list):
        return section
    if not isinstance(section, dict) or set(section) != {"file"}:
        errors.append(doc.where(("customers",), "must be a list or {file: customers.csv}"))
        return []
    csv_path = (path.parent / str(section["file"])).resolve()
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = set(_CSV_COLUMNS[:3]) - set(reader.fieldnames or ())
            if missing:
                errors.append(f"{csv_path}:1: missing columns {sorted(missing)}")
                return []
            rows = []
            for row in reader:
                cleaned = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
                cleaned["services"] = cleaned.get("services", "").replace(";", " ").split()
                rows.append(cleaned)
            return rows
    except OSError as exc:
        errors.append(doc.where(("customers", "file"), f"cannot read {csv_path}: {exc.strerror}"))
        return []


def _describe(exc: ValidationError, doc: Located, prefix: tuple[Any, ...]) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        loc = (*prefix, *(part for part in error["loc"] if part not in ("function-after",)))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "is required"
        lines.append(doc.where(loc, message))
    return lines
