"""What the operator CLI reads from checks.yaml: the daemon's address, token file, timezone
and the languages customers read. Only those keys are expanded and checked, so a secret the
CLI never uses (``password_file: "${CREDENTIALS_DIRECTORY}/…"``) cannot stop it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from monitor.config.customers import customer_rows
from monitor.config.errors import Problems
from monitor.config.load import ConfigError, DaemonConfig
from monitor.config.sources import expand_at
from monitor.config.yamlsource import YamlSourceError, load_located
from monitor.core.fields import LANGUAGES


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The part of a checks.yaml the operator commands use."""

    source: Path
    api_host: str  # where the operator API answers: admin_listen when set, else listen
    api_port: int
    api_tokens_file: Path | None  # resolved beside checks.yaml
    zone: ZoneInfo
    languages: Counter[str]  # configured customers by the language they read
    default_language: str


def operator_settings(path: Path) -> OperatorSettings:
    """Read ``daemon:``, the customers' languages and ``notices.default_language``.

    Raises ConfigError (file:line: key) for a problem in what is read; the rest of the
    file is the daemon's business (``forewarn check-config`` checks all of it).
    """
    try:
        doc = load_located(path)
    except YamlSourceError as exc:
        raise ConfigError([str(exc)]) from None
    problems = Problems(path)
    raw = doc.value if isinstance(doc.value, dict) else {}
    daemon = expand_at(doc, ("daemon",), problems)
    if not isinstance(daemon, dict):
        daemon = {}
    daemon.pop("canary", None)
    settings = None
    try:
        settings = DaemonConfig.model_validate(daemon)
    except ValidationError as exc:
        problems.add_validation(exc, doc, ("daemon",), daemon, DaemonConfig)
    rows = [row.value for row in customer_rows(raw, doc, Problems(path))]  # errors: the daemon's
    problems.check()
    assert settings is not None  # a validation error raised above
    notices = raw.get("notices")
    default = notices.get("default_language") if isinstance(notices, dict) else None
    host, _, port = (settings.admin_listen or settings.listen).rpartition(":")
    return OperatorSettings(
        source=path,
        api_host=host.strip("[]"),
        api_port=int(port),
        api_tokens_file=settings.api_tokens_file,
        zone=ZoneInfo(settings.timezone),
        languages=Counter(_language(row) for row in rows if isinstance(row, dict)),
        default_language=default if default in LANGUAGES else "fr",
    )


def _language(row: dict[str, Any]) -> str:
    language = row.get("language", "fr")
    language = language.strip().lower() if isinstance(language, str) else language
    return language if language in LANGUAGES else "fr"
