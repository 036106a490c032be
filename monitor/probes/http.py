"""HTTP(S) probe: one fresh connection per run, bounded body, per-phase timeouts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import perf_counter
from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.core.fields import CheckBase, HttpUrl
from monitor.probes.assertions import (
    HttpExpect,
)
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult
from monitor.probes.certs import CaFile
from monitor.probes.files import ReadableFile
from monitor.probes.httpcheck import (
    HttpAuth,
    HttpMethod,
    MaxBody,
    MaxRedirects,
    check_headers,
    exchange,
    finish,
    one_login,
    request_body,
    with_auth,
)
from monitor.probes.httpcore import HttpClient, Request
from monitor.probes.outcome import Timeline, Verdict, attempt


@dataclass(frozen=True, slots=True)
class HttpPlan:
    """An http check as its probe runs it: built once at load, plain, immutable, picklable.

    Probe workers get these instead of the pydantic models (a fraction of the memory), and
    no run rebuilds its request.
    """

    id: str
    service: str
    type: str
    interval: float
    timeout: float
    retry_interval: float
    request: Request
    expect: HttpExpect
    max_body: int


class HttpCheck(CheckBase):
    """Settings of an ``http`` check."""

    type: Literal["http"]
    url: HttpUrl
    method: HttpMethod = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    body_file: ReadableFile | None = None  # read once at load; relative to checks.yaml
    auth: HttpAuth | None = None
    ca_file: CaFile | None = None  # trust this CA bundle (only) instead of the system's
    follow_redirects: bool = True
    max_redirects: MaxRedirects = 5
    max_body: MaxBody = 1024 * 1024
    expect: HttpExpect = HttpExpect()
    _body: bytes | None = PrivateAttr(default=None)

    @field_validator("auth")
    @classmethod
    def _one_login(cls, auth: HttpAuth | None, info: ValidationInfo) -> HttpAuth | None:
        return one_login(auth, [info.data.get("url")])

    @model_validator(mode="after")
    def _load_body(self) -> HttpCheck:
        self._body = request_body(self.body, self.body_file)
        check_headers(self.headers, self.auth, self.url)
        return self

    def plan(self) -> HttpPlan:
        """This check as its probe runs it; the scheduler holds it, the model does not.

        Kept in the model, it would take part in its equality: a reload would see every
        probed check as changed.
        """
        return HttpPlan(
            self.id,
            self.service,
            self.type,
            self.interval,
            self.timeout,
            self.retry_interval,
            self.request(),
            self.expect,
            self.max_body,
        )

    def request(self) -> Request:
        """The request this check sends."""
        return Request(
            method=self.method,
            url=self.url,
            headers=with_auth(self.headers, self.auth),
            body=self._body,
            follow_redirects=self.follow_redirects,
            max_redirects=self.max_redirects,
            ca_file=self.ca_file,
        )


class HttpProbe:
    """Runs ``http`` checks over one shared client; safe for many concurrent runs."""

    def __init__(self, context: ProbeContext | None = None) -> None:
        """Create the probe; nothing is opened before the first run."""
        self._client = HttpClient(context.resolver if context is not None else None)

    async def run(self, check: HttpCheck | HttpPlan, now: float) -> ProbeResult:
        """Request ``check.url`` once and judge the answer against ``check.expect``."""
        plan = check if isinstance(check, HttpPlan) else check.plan()
        line = Timeline()
        start = perf_counter()
        deadline = asyncio.get_running_loop().time() + plan.timeout

        async def work() -> Verdict:
            verdict, _ = await exchange(
                self._client, plan.request, plan.expect, plan.max_body, line
            )
            return verdict

        verdict = await attempt(work, line, deadline, plan.timeout)
        return finish(plan.id, now, start, line, verdict, plan.expect.max_latency)

    async def close(self) -> None:
        """Stop the client's resolver threads, if they are its own."""
        await self._client.close()


KIND = ProbeKind(settings=HttpCheck, factory=HttpProbe)
