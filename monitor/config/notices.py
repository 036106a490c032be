"""The notices: and maintenance: sections of checks.yaml: how, when and to whom to write."""

from __future__ import annotations

import operator
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from monitor.core.fields import (
    Delay,
    Duration,
    Identifier,
    Language,
    LocalizedText,
    StrictModel,
)
from monitor.core.timebounds import SPAN_TEXT, check_moment
from notifiers import NOTIFIERS, ChannelSettings


class SmtpConfig(StrictModel):
    """How to reach the mail server."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    tls: bool = False  # implicit TLS (port 465)
    username: str | None = None
    password_file: Path | None = None  # relative to checks.yaml's folder once loaded
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpConfig:
        if self.starttls and self.tls:
            raise ValueError("starttls and tls cannot both be true (tls is for port 465)")
        return self


# The ops channels' settings, one model per registered channel, told apart by `type:`. The
# type checker sees their common base; pydantic validates the registry's union.
if TYPE_CHECKING:
    OpsChannel = ChannelSettings
else:
    OpsChannel = Annotated[
        reduce(operator.or_, (kind.settings for kind in NOTIFIERS.values())),
        Field(discriminator="type"),
    ]


class NoticesConfig(StrictModel):
    """Who sends customer notices, how, and at which pace."""

    from_: str = Field("forewarn <forewarn@localhost>", alias="from")
    transport: Literal["smtp", "file"] = "file"
    smtp: SmtpConfig = SmtpConfig()
    customer_delay: Delay = 60.0  # how long an outage lasts before customers hear (0: at once)
    update_every: Duration = 1800.0
    stable_for: Duration = 300.0
    default_language: Language = "fr"
    retry_initial: Duration = 5.0  # first delay before re-sending a notice the server deferred
    retry_max: Duration = 900.0  # backoff doubles up to this, with jitter
    # A resolution promises a review of the incident only when it lasted this long (or the
    # operator announced one when resolving it): a 14 s blip is not worth a promise.
    review_after: Duration = 1800.0
    # A channel whose every send fails this long (SMTP down) is news for the other ops
    # channels, once per episode, and makes /healthz "degraded"; a setup error is news at once.
    delivery_alarm_after: Duration = 120.0
    digest_window: Delay = 0.0  # wait this long for more failures of the same customers
    max_per_second: Annotated[float, Field(gt=0, le=10_000)] | None = None  # all channels
    ops: list[OpsChannel] = Field(default_factory=list)
    templates_dir: Path | None = None  # overrides of <language>/<kind>.subject|txt|html

    @field_validator("from_")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value) or "@" not in value:
            raise ValueError("must be one address such as 'Support <support@example.net>'")
        return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, such as 2026-11-22T13:00:00+01:00")
    try:
        return check_moment(value)
    except OverflowError:
        raise ValueError(f"must be {SPAN_TEXT}") from None


class MaintenanceConfig(StrictModel):
    """A planned interruption written in checks.yaml."""

    id: Identifier
    services: Annotated[list[Identifier], Field(min_length=1)]
    start: Annotated[datetime, AfterValidator(_aware)]
    end: Annotated[datetime, AfterValidator(_aware)]
    announce_before: Delay = 86400.0
    summary: LocalizedText | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> MaintenanceConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self
