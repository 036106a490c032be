"""Transaction probe: ordered HTTP steps; values extracted from one answer feed the next.

``{{ name }}`` in a later step's url, headers or body is replaced by the value extracted as
``name`` (plain substitution: no expressions, no code). In a url the value is
percent-encoded; in headers and body it is inserted as it is.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from time import perf_counter
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, ValidationInfo, field_validator, model_validator

from monitor.core.fields import CheckBase, HttpUrl, StrictModel
from monitor.probes.assertions import HttpExpect, pattern
from monitor.probes.base import ProbeContext, ProbeKind, ProbeResult, Reason
from monitor.probes.certs import CaFile
from monitor.probes.http1 import ProbeFailure
from monitor.probes.httpcheck import (
    HttpAuth,
    HttpMethod,
    MaxBody,
    MaxRedirects,
    check_headers,
    exchange,
    finish,
    one_login,
    with_auth,
)
from monitor.probes.httpcore import HttpClient, Request
from monitor.probes.jsonpath import lookup, parse_path
from monitor.probes.outcome import Timeline, Verdict, attempt, seconds

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class RegexExtract(StrictModel):
    """``{regex: "..."}``: the first group (or the whole match) found in the body."""

    regex: str

    @field_validator("regex")
    @classmethod
    def _valid(cls, text: str) -> str:
        try:
            pattern(text)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return text


class Step(StrictModel):
    """One request of a transaction."""

    name: Annotated[str, Field(min_length=1, max_length=40)]
    method: HttpMethod = "GET"
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    max_redirects: MaxRedirects = 5
    expect: HttpExpect = HttpExpect()
    extract: dict[VariableName, str | RegexExtract] = Field(default_factory=dict)

    @field_validator("extract")
    @classmethod
    def _valid_paths(cls, extract: dict[str, str | RegexExtract]) -> dict[str, str | RegexExtract]:
        for how in extract.values():
            if isinstance(how, str):
                parse_path(how)
        return extract

    def uses(self) -> set[str]:
        """The variables this step's url, headers and body refer to."""
        texts = [self.url, self.body or "", *self.headers.values()]
        return {name for text in texts for name in _VARIABLE.findall(text)}


class TransactionCheck(CheckBase):
    """Settings of a ``transaction`` check."""

    type: Literal["transaction"]
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    auth: HttpAuth | None = None  # sent with every step
    ca_file: CaFile | None = None
    max_body: MaxBody = 1024 * 1024

    @field_validator("auth")
    @classmethod
    def _one_login(cls, auth: HttpAuth | None, info: ValidationInfo) -> HttpAuth | None:
        steps = info.data.get("steps") or []
        return one_login(auth, [step.url for step in steps])

    @model_validator(mode="after")
    def _variables_defined_before_use(self) -> TransactionCheck:
        known: set[str] = set()
        for number, step in enumerate(self.steps, 1):
            check_headers(step.headers, self.auth, step.url)
            unknown = step.uses() - known
            if unknown:
                names = ", ".join(sorted(unknown))
                raise ValueError(
                    f"step {number} ({step.name}) uses {names}, not extracted by an earlier step"
                )
            known |= step.extract.keys()
        return self


def substitute(text: str, variables: dict[str, str], encode: bool = False) -> str:
    """Replace each ``{{ name }}`` by its value (percent-encoded when ``encode``)."""

    def value(match: re.Match[str]) -> str:
        found = variables[match.group(1)]
        return quote(found, safe="") if encode else found

    return _VARIABLE.sub(value, text)


def extract(step: Step, body: bytes, text: str, variables: dict[str, str]) -> None:
    """Add this step's extracted values to ``variables``; ProbeFailure when one is missing."""
    document: object = None
    for name, how in step.extract.items():
        if isinstance(how, RegexExtract):
            match = pattern(how.regex).search(text)
            if match is None:
                raise ProbeFailure(
                    Reason.BODY_MISMATCH, f"cannot extract {name}: no match for {how.regex!r}"
                )
            value = match.group(1) if match.re.groups else match.group(0)
        else:
            if document is None:
                try:
                    document = json.loads(body)
                except (ValueError, RecursionError):
                    raise ProbeFailure(
                        Reason.JSON_MISMATCH, f"cannot extract {name}: body is not JSON"
                    ) from None
            found, seen = lookup(document, parse_path(how))
            if not found or isinstance(seen, dict | list) or seen is None:
                why = "missing" if not found else "not a single value"
                raise ProbeFailure(Reason.JSON_MISMATCH, f"cannot extract {name}: {how} {why}")
            value = seen if isinstance(seen, str) else json.dumps(seen)
        if any(ord(ch) < 32 for ch in value):
            raise ProbeFailure(Reason.PROTOCOL, f"cannot extract {name}: not a single line")
        variables[name] = value


class TransactionProbe:
    """Runs ``transaction`` checks over one shared client."""

    def __init__(self, context: ProbeContext | None = None) -> None:
        """Create the probe; nothing is opened before the first run."""
        self._client = HttpClient(context.resolver if context is not None else None)

    async def run(self, check: TransactionCheck, now: float) -> ProbeResult:
        """Run the steps in order under one deadline; stop at the first failing step."""
        line = Timeline()
        start = perf_counter()
        deadline = asyncio.get_running_loop().time() + check.timeout
        variables: dict[str, str] = {}
        slow = ""
        verdict: Verdict = (None, "")
        for number, step in enumerate(check.steps, 1):
            label = f"step {number} ({step.name}): "
            began = perf_counter()

            async def work(step: Step = step) -> Verdict:
                request = Request(
                    method=step.method,
                    url=substitute(step.url, variables, encode=True),
                    headers=with_auth(
                        {k: substitute(v, variables) for k, v in step.headers.items()},
                        check.auth,
                    ),
                    body=None if step.body is None else substitute(step.body, variables),
                    follow_redirects=step.follow_redirects,
                    max_redirects=step.max_redirects,
                    ca_file=check.ca_file,
                )
                need = bool(step.extract)
                judged, body = await exchange(
                    self._client, request, step.expect, check.max_body, line, need
                )
                if judged[0] is None and body is not None and step.extract:
                    text = body.decode("utf-8", errors="replace")
                    extract(step, body, text, variables)
                return judged

            reason, detail = await attempt(work, line, deadline, check.timeout)
            if reason is not None:
                verdict = (reason, label + detail)
                break
            took, limit = perf_counter() - began, step.expect.max_latency
            if not slow and limit and took > limit:
                slow = f"{label}latency {took:.2f}s above {seconds(limit)}"
        result = finish(check.id, now, start, line, verdict, None)
        if result.ok and slow:
            result = replace(result, degraded=True, detail=slow)
        return result

    async def close(self) -> None:
        """Stop the client's resolver threads, if they are its own."""
        await self._client.close()


KIND = ProbeKind(settings=TransactionCheck, factory=TransactionProbe)
