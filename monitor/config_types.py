"""Building blocks shared by the config schema and the probe kinds' own settings."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Turn ``500ms``, ``30s``, ``5m``, ``2h`` or ``1d`` into positive seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a duration such as 500ms, 30s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 500ms, 30s, 5m, 2h or 1d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A positive duration in seconds, written ``30s`` in checks.yaml."""

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
"""A short lowercase id: safe in metric labels, URLs and Message-IDs."""


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
