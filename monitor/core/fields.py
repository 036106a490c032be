"""Building blocks shared by the config schema and the probe kinds' own settings."""

from __future__ import annotations

import itertools
import math
import re
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from yarl import URL

_DURATION = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_COMPOUND = re.compile(r"^\s*(-?)((?:[0-9]+(?:ms|s|m|h|d)){2,})\s*$")  # 1h30m: whole numbers
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_LONGEST = 365 * 86400.0  # a ceiling keeps timers within what the event loop can schedule
DURATION_HINT = "a duration such as 500ms, 30s, 5m, 2h, 1d or 1h30m"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


FROM_FILE: dict[str, Any] = {"from_file": True}
"""The validation context of what checks.yaml says: there, a duration needs its unit."""


class Seconds(float):
    """A duration already parsed, such as a ``defaults:`` value merged into a check."""


def _seconds(value: Any) -> float:
    """Seconds in ``value``: a duration string, or (from code, not a file) a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be {DURATION_HINT}")
    if isinstance(value, str) and (compound := _compound(value)) is not None:
        return compound
    if isinstance(value, str):
        match = _DURATION.match(value)
        number, unit = (float(match.group(1)), match.group(2)) if match else (None, None)
        if number is None or (unit is None and number != 0):  # only 0 goes without a unit
            raise ValueError(f"{_show(value)} is not {DURATION_HINT}")
        return number * _UNIT_SECONDS[unit or "s"]
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"must be {DURATION_HINT}")
    if abs(value) < 1e300:
        return float(value)
    return math.inf if value > 0 else -math.inf  # float() would overflow


def _compound(text: str) -> float | None:
    """Seconds in ``1h30m`` or ``2m30s``: whole numbers, largest unit first, each once."""
    match = _COMPOUND.match(text)
    if not match:
        return None
    parts = [(int(number), unit) for number, unit in _PART.findall(match.group(2))]
    sizes = [_UNIT_SECONDS[unit] for _, unit in parts]
    if any(later >= earlier for earlier, later in itertools.pairwise(sizes)):
        raise ValueError(f"{_show(text)} is not {DURATION_HINT} (largest unit first, each once)")
    seconds = sum(number * _UNIT_SECONDS[unit] for number, unit in parts)
    return -seconds if match.group(1) else seconds


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: Any) -> float:
    """Turn ``500ms``, ``30s``, ``5m``, ``2h``, ``1d`` or ``1h30m`` into positive seconds."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError(f"must be positive, not {_show(value)}")
    if seconds > _LONGEST:
        raise ValueError("must be at most 365d")
    return seconds


def parse_delay(value: Any) -> float:
    """Like ``parse_duration`` but zero (``0``, ``0s``) is allowed: "no delay"."""
    seconds = _seconds(value)
    if seconds < 0:
        raise ValueError(f"must be 0s or more, not {_show(value)}")
    if seconds > _LONGEST:
        raise ValueError("must be at most 365d")
    return seconds


def _written(value: Any, info: ValidationInfo) -> None:
    """Refuse a bare number in checks.yaml: ``interval: 30`` could mean 30 s or 30 min."""
    from_file = bool(info.context and info.context.get("from_file"))
    number = isinstance(value, int | float) and not isinstance(value, bool | Seconds)
    if from_file and number and value != 0:  # 0 is 0 in every unit ("no delay")
        raise ValueError(f"{_show(value)} is not {DURATION_HINT} (write {_show(value)}s)")


def _duration(value: Any, info: ValidationInfo) -> float:
    seconds = parse_duration(value)  # first: -5, nan or .inf are refused for what they are
    _written(value, info)
    return seconds


def _delay(value: Any, info: ValidationInfo) -> float:
    seconds = parse_delay(value)
    _written(value, info)
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]
"""A positive duration in seconds, written ``30s`` in checks.yaml."""

Delay = Annotated[float, BeforeValidator(_delay)]
"""A duration that may be zero, such as ``customer_delay``."""

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
"""A short lowercase id: safe in metric labels, URLs and Message-IDs."""


def http_url(url: str) -> str:
    """Accept only http:// and https:// URLs that name a host and that a client can parse."""
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("must not contain control characters such as a line break")
    try:
        parsed = URL(url)
        parsed.port  # noqa: B018 -- parsing the port is what finds "host:99999" or "host:abc"
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {str(exc)[:80]}") from None
    if not parsed.host or any(ch.isspace() for ch in parsed.host):
        raise ValueError("must name a host, such as https://ws.example.net/path")
    return url


HttpUrl = Annotated[str, AfterValidator(http_url)]
"""A URL probes may fetch or emails may link to: http:// or https:// only."""


class StrictModel(BaseModel):
    """A frozen config model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckBase(StrictModel):
    """Fields every check has, whatever its kind; timing comes merged from ``defaults``."""

    id: Identifier
    service: Identifier
    type: str
    interval: Duration
    timeout: Duration
    retry_interval: Duration
    failure_threshold: Annotated[int, Field(ge=1, le=100)]
    success_threshold: Annotated[int, Field(ge=1, le=100)]


Language = Literal["fr", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)  # in the order they are offered


def _one_name_for_all(value: Any) -> Any:
    """A plain string names the thing the same way in every language."""
    return dict.fromkeys(LANGUAGES, value) if isinstance(value, str) else value


LocalizedText = Annotated[
    dict[Language, str], BeforeValidator(_one_name_for_all), Field(min_length=1)
]


def check_zone(value: str) -> str:
    """``value`` if it names a known IANA timezone."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "../x", "Europe" (a folder), "a\0"
        raise ValueError(f"unknown timezone {value[:60]!r}") from None
    return value
