"""checks.yaml → Config: strict schema, secrets from files or ${ENV}, errors with file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
)

from monitor.config.customers import Customer as Customer
from monitor.config.customers import customer_rows, validate_customers
from monitor.config.daemon import DaemonConfig as DaemonConfig
from monitor.config.errors import ConfigError as ConfigError
from monitor.config.errors import Problems
from monitor.config.notices import MaintenanceConfig as MaintenanceConfig
from monitor.config.notices import NoticesConfig as NoticesConfig
from monitor.config.refs import check_references
from monitor.config.sources import expand, tokens_file
from monitor.config.statuspage import Logo, StatusPageConfig, read_logo
from monitor.config.suggest import LOADER_FILLED
from monitor.config.warnings import warnings
from monitor.config.yamlsource import Located, YamlSourceError, load_located
from monitor.core.fields import (
    FROM_FILE,
    CheckBase,
    Delay,
    Duration,
    Identifier,
    LocalizedText,
    Seconds,
    StrictModel,
)
from monitor.core.fields import parse_duration as parse_duration
from monitor.core.render import check_templates
from monitor.probes import PROBES


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
    # Per-service pace, each falling back to the notices: section.
    customer_delay: Delay | None = None
    update_every: Duration | None = None
    stable_for: Duration | None = None
    # What its customers experience when it is down ("label printing fails"), said in emails
    # instead of the generic "your requests may fail or go unanswered".
    impact: LocalizedText | None = None

    def display_name(self, language: str) -> str:
        """The service name in ``language``, else in any language it has."""
        return self.name.get(language) or next(iter(self.name.values()))  # type: ignore[call-overload]

    def impact_text(self, language: str) -> str:
        """What its customers experience when it is down, in ``language`` ("" when unset)."""
        if self.impact is None:
            return ""
        return self.impact.get(language) or next(iter(self.impact.values()))  # type: ignore[call-overload]


class Config(StrictModel):
    """The whole validated configuration."""

    daemon: DaemonConfig = DaemonConfig()
    defaults: Defaults = Defaults()
    services: list[Service]
    checks: list[CheckBase]
    customers: list[Customer] = Field(default_factory=list)
    notices: NoticesConfig = NoticesConfig()
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    # Filled by the loader, never written at the top of the file (LOADER_FILLED).
    canary: list[CheckBase] = Field(default_factory=list, json_schema_extra=LOADER_FILLED)
    status_page: StatusPageConfig = StatusPageConfig()
    logo: Logo | None = Field(None, json_schema_extra=LOADER_FILLED)  # logo_file's content
    source: Path = Field(Path("checks.yaml"), json_schema_extra=LOADER_FILLED)

    def service(self, service_id: str) -> Service:
        """The service with this id."""
        return next(s for s in self.services if s.id == service_id)

    def zone(self, customer: Customer | None = None) -> ZoneInfo:
        """The timezone a customer reads times in (the daemon's by default)."""
        return ZoneInfo((customer and customer.timezone) or self.daemon.timezone)


def load_config(path: str | Path) -> Config:
    """Read, expand and validate a checks.yaml; raise ConfigError naming file, line and key."""
    return check_config(path)[0]


def check_config(path: str | Path) -> tuple[Config, list[str]]:
    """``load_config``, with the warnings (``file:line: key: warning: …``) it gives rise to."""
    path = Path(path)
    try:
        doc = load_located(path)
    except YamlSourceError as exc:
        raise ConfigError([str(exc)]) from None
    problems = Problems(path)
    raw = expand(doc, problems)
    if not isinstance(raw, dict):
        shape, line = "is empty" if raw is None else "must be a mapping", doc.line_of(())
        text = f"the file {shape}; it needs at least services: and checks:"
        raise ConfigError([f"{path}:{line}: {text}"])
    for own in ("source", "logo"):  # set by the loader, never by the file
        if own in raw:
            problems.add(doc, (own,), "unknown key")
            del raw[own]
    if "canary" in raw:  # a Config field the loader fills from daemon.canary: never dropped unsaid
        problems.add(doc, ("canary",), "unknown key (canary is a key of daemon: write it there)")
        del raw["canary"]
    defaults = _defaults(raw, doc, problems)
    checks = _checks(raw, defaults, doc, problems)
    canary = _canary(raw, defaults, doc, problems)
    rows = customer_rows(raw, doc, problems)
    tokens_file(raw, problems)
    customers = validate_customers(rows, problems)
    _templates_dir(raw, doc, problems)
    config = None
    try:
        config = Config.model_validate(
            {
                **raw,
                "defaults": defaults,
                "checks": checks,
                "canary": canary,
                "customers": customers,
                "logo": read_logo(raw, doc, problems),
                "source": path,
            },
            context=FROM_FILE,
        )
    except ValidationError as exc:
        problems.add_validation(exc, doc, (), raw, Config)
    check_references(raw, doc, rows, problems)
    problems.check()
    assert config is not None  # validation failed → problems.check() raised
    return config, warnings(config, doc)


def _canary(raw: dict[str, Any], defaults: Defaults, doc: Located, problems: Problems) -> Any:
    """``daemon.canary``: checks of forewarn's own network, validated like any check."""
    daemon = raw.get("daemon")
    if not isinstance(daemon, dict) or "canary" not in daemon:
        return []
    items = daemon.pop("canary")
    if not isinstance(items, list):
        problems.add(doc, ("daemon", "canary"), "must be a list of checks")
        return []
    # A canary belongs to no customer-facing service; it only needs the field to validate.
    owned = [{"service": "canary", **i} if isinstance(i, dict) else i for i in items]
    canary = _checks({"checks": owned}, defaults, doc, problems, key=("daemon", "canary"))
    checks = raw.get("checks")
    listed = checks if isinstance(checks, list) else []  # a wrong `checks:` is reported apart
    taken = {c.get("id") for c in listed if isinstance(c, dict) and isinstance(c.get("id"), str)}
    for i, check in enumerate(canary):
        if check.id in taken:
            problems.add(doc, ("daemon", "canary", i, "id"), f"check id {check.id!r} is taken")
    return canary


def _templates_dir(raw: dict[str, Any], doc: Located, problems: Problems) -> None:
    """Resolve ``notices.templates_dir`` beside checks.yaml and check every template in it."""
    notices = raw.get("notices")
    name = notices.get("templates_dir") if isinstance(notices, dict) else None
    if not isinstance(name, str):
        return
    folder = Path(name) if Path(name).is_absolute() else doc.path.parent / name
    assert isinstance(notices, dict)
    notices["templates_dir"] = str(folder.absolute())
    for error in check_templates(folder):
        line = doc.line_of(("notices", "templates_dir"))
        problems.add_at(doc.path, line, f"{doc.path}:{line}: notices.templates_dir: {error}")


def _defaults(raw: dict[str, Any], doc: Located, problems: Problems) -> Defaults:
    """Validated first and apart, so a bad default is reported once, not once per check."""
    section = raw.get("defaults", {})
    try:
        return Defaults.model_validate(section, context=FROM_FILE)
    except ValidationError as exc:
        problems.add_validation(exc, doc, ("defaults",), section, Defaults)
        return Defaults()  # keep checking the checks with the built-in timing


def _checks(
    raw: dict[str, Any],
    defaults: Defaults,
    doc: Located,
    problems: Problems,
    key: tuple[str, ...] = ("checks",),
) -> list[CheckBase]:
    """Validate each check with its kind's own model, timing merged from ``defaults``."""
    items = raw.get("checks")
    if not isinstance(items, list) or not items:
        if "checks" not in raw:
            message = "is required"
        elif isinstance(items, list):
            message = "must list at least one check"  # a monitor of nothing is a mistake
        else:
            message = "must be a list of checks" + (", not empty" if items is None else "")
        problems.add(doc, key, message)
        return []
    # Parsed already: marked so, they pass where a bare number written in the file would not.
    timing = {
        k: Seconds(v) if isinstance(v, float) else v for k, v in defaults.model_dump().items()
    }
    typed: list[CheckBase] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.add(doc, (*key, i), "must be a mapping")
            continue
        kind = PROBES.get(item["type"]) if isinstance(item.get("type"), str) else None
        if kind is None:
            known = " | ".join(sorted(PROBES))
            message = "is required" if "type" not in item else f"must be one of {known}"
            problems.add(doc, (*key, i, "type"), message)
            continue
        merged = {**timing, **item}
        try:
            typed.append(kind.settings.model_validate(merged, context=FROM_FILE))
        except ValidationError as exc:
            problems.add_validation(exc, doc, (*key, i), merged, kind.settings)
    share_expectations(typed)
    return typed


def share_expectations(checks: list[CheckBase]) -> None:
    """Checks expecting the same thing hold one (frozen) ``expect:``: ~0.7 KB a check less.

    Most checks of a config expect the same few things (``status: [200]``); at 10,000 checks
    their copies were 7 MB of the daemon's memory (issue 21).
    """
    seen: dict[str, BaseModel] = {}
    for check in checks:
        expect = getattr(check, "expect", None)
        if isinstance(expect, BaseModel):
            # The model is frozen: its __dict__ is the one way to swap a value for an equal one.
            check.__dict__["expect"] = seen.setdefault(repr(expect), expect)
