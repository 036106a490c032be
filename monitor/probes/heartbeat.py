"""Heartbeat (push) checks: a batch job pings ``POST /heartbeat/{token}``; silence fails.

The ``HeartbeatBook`` is the one shared object: the daemon builds it, the web hooks write
pings into it and the probe reads them. It lives in memory, so after a restart every
heartbeat gets ``every + grace`` (or its next scheduled run + grace) before it can fail.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from time import perf_counter
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from monitor.core.fields import CheckBase, Delay, Duration
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult, Reason
from monitor.probes.files import ReadableFile, read_secret
from monitor.probes.outcome import seconds
from monitor.probes.schedule import WEEKDAYS, Calendar, Rule, due, parse_cron

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")


class HeartbeatCheck(CheckBase):
    """Settings of a ``heartbeat`` check."""

    type: Literal["heartbeat"]
    token: SecretStr | None = None  # write "${ENV_VAR}": never inline
    token_file: ReadableFile | None = None
    every: Duration | None = None
    schedule: str | None = None  # 5-field cron, in ``timezone``
    grace: Delay = 0.0
    timezone: str | None = None  # default: daemon.timezone
    working_days: list[Weekday] = Field(default_factory=lambda: list(_ALL_DAYS))
    holidays: list[date] = Field(default_factory=list)
    _token: SecretStr = PrivateAttr(default=SecretStr(""))

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, schedule: str | None) -> str | None:
        if schedule is not None:
            parse_cron(schedule)
        return schedule

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
                raise ValueError(f"unknown timezone {zone[:60]!r}") from None
        return zone

    @model_validator(mode="after")
    def _one_of_each(self) -> HeartbeatCheck:
        if (self.every is None) == (self.schedule is None):
            raise ValueError("set exactly one of every or schedule")
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of token (from ${ENV}) or token_file")
        secret = self.token.get_secret_value() if self.token else read_secret(str(self.token_file))
        if not _TOKEN.fullmatch(secret):
            raise ValueError("the token must be 16 to 256 characters among A-Z a-z 0-9 . _ ~ -")
        self._token = SecretStr(secret)
        return self

    def secret(self) -> str:
        """The token the job puts in its URL."""
        return self._token.get_secret_value()

    def rule(self, default_zone: str) -> Rule:
        """The pure timing rule of this heartbeat."""
        calendar = Calendar(
            zone=ZoneInfo(self.timezone or default_zone),
            working_days=frozenset(WEEKDAYS.index(day) for day in self.working_days),
            holidays=frozenset(self.holidays),
        )
        cron = parse_cron(self.schedule) if self.schedule is not None else None
        return Rule(calendar=calendar, grace=self.grace, every=self.every, cron=cron)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class HeartbeatBook:
    """Pings received per heartbeat check, in memory; written by the web hooks."""

    def __init__(self, started_at: float, clock: Callable[[], float] = time.time) -> None:
        """An empty book; ``started_at`` stands for the last ping until one comes."""
        self.started_at = started_at
        self._clock = clock
        self._tokens: list[tuple[bytes, str]] = []
        self._pings: dict[str, float] = {}
        self._failures: dict[str, float] = {}

    @classmethod
    def for_checks(
        cls, checks: Iterable[object], started_at: float, clock: Callable[[], float] = time.time
    ) -> HeartbeatBook:
        """A book knowing the token of every heartbeat check among ``checks``."""
        book = cls(started_at, clock)
        book.set_checks(checks)
        return book

    def set_checks(self, checks: Iterable[object]) -> None:
        """Accept the tokens of the heartbeat checks among ``checks``, and only those."""
        self._tokens = [
            (_digest(check.secret()), check.id)
            for check in checks
            if isinstance(check, HeartbeatCheck)
        ]

    def match(self, token: str) -> list[str]:
        """The checks ``token`` belongs to; every token is compared, in constant time."""
        candidate = _digest(token)
        found: list[str] = []
        for digest, check_id in self._tokens:
            if hmac.compare_digest(candidate, digest):
                found.append(check_id)
        return found

    def ping(self, check_id: str) -> None:
        """Record that the job ran well, now."""
        self._pings[check_id] = self._clock()

    def fail(self, check_id: str) -> None:
        """Record that the job reported a failure, now."""
        self._failures[check_id] = self._clock()

    def last_ping(self, check_id: str) -> float | None:
        """When the last good ping came, if any."""
        return self._pings.get(check_id)

    def last_failure(self, check_id: str) -> float | None:
        """When the job last reported a failure, if it did."""
        return self._failures.get(check_id)


class HeartbeatProbe:
    """Judges heartbeat checks from the book: no network, no state of its own."""

    def __init__(self, context: ProbeContext) -> None:
        """Read pings from the daemon's book; write times in the daemon's timezone."""
        self._book = context.heartbeats
        self._zone = context.timezone

    async def run(self, check: HeartbeatCheck, now: float) -> ProbeResult:
        """Fail when the job said it failed, or no ping came when one was due."""
        start = perf_counter()
        book = self._book
        rule = check.rule(self._zone)
        pinged, failed = book.last_ping(check.id), book.last_failure(check.id)
        reason: Reason | None = None
        detail = ""
        if failed is not None and (pinged is None or failed >= pinged):
            reason = Reason.JOB_FAILED
            detail = f"job reported a failure at {_clock(failed, now, rule)}"
        elif (overdue := due(rule, book.started_at if pinged is None else pinged, now)) is not None:
            since = "start at " if pinged is None else ""
            last = _clock(book.started_at if pinged is None else pinged, now, rule)
            if check.every is not None:
                expected = f"every {_duration(check.every)} + {_duration(check.grace)}"
            else:
                expected = f"by {_clock(overdue, now, rule)}"
            reason, detail = (
                Reason.NO_HEARTBEAT,
                f"no ping since {since}{last} (expected {expected})",
            )
        return ProbeResult.judged(check.id, now, reason, detail, perf_counter() - start)

    async def close(self) -> None:
        """Nothing to release."""


def _clock(at: float, now: float, rule: Rule) -> str:
    """``13:02`` today, ``2026-11-20 13:02`` another day, in the heartbeat's timezone."""
    zone = rule.calendar.zone
    moment, today = datetime.fromtimestamp(at, zone), datetime.fromtimestamp(now, zone).date()
    return moment.strftime("%H:%M" if moment.date() == today else "%Y-%m-%d %H:%M")


def _duration(value: float) -> str:
    """``1h``, ``10m``, ``90s``: the largest unit that writes it whole."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return seconds(value) if value else "0s"


KIND = ProbeKind(settings=HeartbeatCheck, factory=HeartbeatProbe)
