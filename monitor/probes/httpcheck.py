"""What the request-based kinds (http, soap, transaction) share in settings and judgement.

Credentials, request bodies and header rules as checks.yaml states them; one exchange judged
against an ``expect:``; the result of a run. The client machinery under them (connections, phases,
deadline, error → reason) is ``httpcore``.
"""

from __future__ import annotations

import base64
from time import perf_counter
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from yarl import URL

from monitor.core.fields import StrictModel
from monitor.probes.assertions import HttpExpect, judge_body, judge_headers, judge_status
from monitor.probes.base import ProbeResult
from monitor.probes.files import ReadableFile, read_body, read_secret
from monitor.probes.httpcore import HttpClient, Request
from monitor.probes.outcome import Timeline, Verdict, seconds

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MaxBody = Annotated[int, Field(ge=1, le=64 * 1024 * 1024)]
MaxRedirects = Annotated[int, Field(ge=0, le=50)]

# A body no expectation needs is still drained when declared this small, so "transfer" is
# measured for ordinary pages without paying for large downloads nobody looks at.
_DRAIN_LIMIT = 64 * 1024


class BasicAuth(StrictModel):
    """``basic: {username: u, password_file: p}``."""

    username: str
    password_file: ReadableFile

    @field_validator("username")
    @classmethod
    def _no_colon(cls, username: str) -> str:
        if ":" in username or any(ord(ch) < 32 for ch in username):
            raise ValueError("must not contain ':' or control characters")
        return username


class HttpAuth(StrictModel):
    """Credentials, from secret files read when checks.yaml is loaded; never shown."""

    basic: BasicAuth | None = None
    bearer_file: ReadableFile | None = None
    _header: SecretStr = PrivateAttr(default=SecretStr(""))

    @model_validator(mode="after")
    def _read_secret(self) -> HttpAuth:
        if (self.basic is None) == (self.bearer_file is None):
            raise ValueError("set exactly one of basic or bearer_file")
        if self.basic is not None:
            pair = f"{self.basic.username}:{read_secret(self.basic.password_file)}"
            self._header = SecretStr("Basic " + base64.b64encode(pair.encode()).decode())
        elif self.bearer_file is not None:
            self._header = SecretStr("Bearer " + read_secret(self.bearer_file))
        return self

    def header(self) -> str:
        """The Authorization header value."""
        return self._header.get_secret_value()


def request_body(body: str | None, body_file: str | None) -> bytes | None:
    """The request body from ``body`` or ``body_file`` (not both)."""
    if body is not None and body_file is not None:
        raise ValueError("set body or body_file, not both")
    if body_file is not None:
        return read_body(body_file)
    return None if body is None else body.encode()


def check_headers(headers: dict[str, str], auth: HttpAuth | None, url: str = "") -> None:
    """Refuse header values that would split lines, and two ways of authenticating."""
    for name, value in headers.items():
        if any(ch in f"{name}{value}" for ch in "\r\n\0"):
            raise ValueError(f"header {name!r} must not contain line breaks")
    if any(name.lower() == "authorization" for name in headers):
        if auth is not None:
            raise ValueError("set auth or an Authorization header, not both")
        if url_credentials(url):
            raise ValueError("set user:pass@ in the url or an Authorization header, not both")


def url_credentials(url: object) -> bool:
    """True when ``url`` holds ``user:pass@`` (or ``user@``), which the client sends as Basic."""
    if not isinstance(url, str):
        return False  # missing or invalid: reported as such
    try:
        parsed = URL(url)
    except ValueError:
        return False
    return parsed.user is not None or parsed.password is not None


def one_login(auth: HttpAuth | None, urls: list[object]) -> HttpAuth | None:
    """``auth``, unless a url also logs in: the client refuses both, failing every run."""
    if auth is not None and any(url_credentials(url) for url in urls):
        raise ValueError("cannot be used with user:pass@ in the url: keep one of them")
    return auth


def with_auth(headers: dict[str, str], auth: HttpAuth | None) -> dict[str, str]:
    """``headers`` plus Authorization from ``auth``."""
    return headers if auth is None else {**headers, "Authorization": auth.header()}


def finish(
    check_id: str,
    now: float,
    start: float,
    line: Timeline,
    verdict: Verdict,
    max_latency: float | None,
) -> ProbeResult:
    """The result of a request-based run: degraded when healthy but slower than allowed."""
    reason, detail = verdict
    duration = perf_counter() - start
    degraded = False
    if reason is None and max_latency and duration > max_latency:
        degraded = True
        detail = f"latency {duration:.2f}s above {seconds(max_latency)}"
    return ProbeResult.judged(
        check_id,
        now,
        reason,
        detail,
        duration,
        degraded=degraded,
        phases=line.phases(),
        cert_not_after=line.cert_not_after,
    )


async def exchange(
    client: HttpClient,
    request: Request,
    expect: HttpExpect,
    max_body: int,
    line: Timeline,
    need_body: bool = False,
) -> tuple[Verdict, bytes | None]:
    """Send ``request`` and judge the answer; the body comes back when it was read."""
    async with client.send(request, line) as reply:
        verdict = judge_status(reply.status, expect.status)
        if verdict[0] is None:
            verdict = judge_headers(reply.headers, expect)
        if verdict[0] is not None:
            return verdict, None
        declared = reply.content_length
        needed = need_body or expect.needs_body
        if not needed and (declared is None or declared > _DRAIN_LIMIT):
            return (None, ""), None
        body = await reply.read(max_body)
        return judge_body(reply.text(body), body, expect), body
