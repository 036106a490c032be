"""What a healthy HTTP answer looks like (``expect:``), and judging an answer against it.

``expect.json`` maps a JSON path to an expectation: a plain value (equality), a comparison
string (``"< 300"``, ``">= 1"``, ``"!= KO"``), ``{exists: true|false}``, or
``{len: 3}`` / ``{len: "> 0"}``.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator

from monitor.core.fields import Duration, StrictModel
from monitor.probes.base import Reason
from monitor.probes.jsonpath import json_equal, lookup, parse_path, show

Verdict = tuple[Reason | None, str]

_COMPARISON = re.compile(r"^\s*(<=|>=|!=|==|<|>)\s*(.*?)\s*$", re.DOTALL)
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@lru_cache(maxsize=1024)
def pattern(text: str) -> re.Pattern[str]:
    """Compile a regular expression once, however many runs use it."""
    return re.compile(text)


def _valid_regex(text: str) -> str:
    try:
        pattern(text)
    except re.error as exc:
        raise ValueError(f"{text!r} is not a valid regular expression: {exc}") from None
    return text


@dataclass(frozen=True, slots=True)
class Comparison:
    """``op operand``: ordering needs numbers; ``==``/``!=`` compare as JSON values."""

    op: str
    operand: Any

    def holds(self, seen: Any) -> bool:
        """Whether ``seen`` satisfies the comparison."""
        if self.op in _ORDER:
            number = isinstance(seen, int | float) and not isinstance(seen, bool)
            return number and _ORDER[self.op](seen, self.operand)
        equal = json_equal(seen, self.operand)
        return equal if self.op == "==" else not equal

    def __str__(self) -> str:
        return f"{self.op} {show(self.operand)}"


def comparison(text: str) -> Comparison | None:
    """Read ``"< 300"``; None when ``text`` is no comparison (then it means equality)."""
    match = _COMPARISON.match(text)
    if match is None:
        return None
    op, raw = match.groups()
    try:
        operand = json.loads(raw)
    except ValueError:
        operand = raw  # a bare word such as KO is a string
    if op in _ORDER and (not isinstance(operand, int | float) or isinstance(operand, bool)):
        raise ValueError(f"{text!r}: {op} needs a number")
    return Comparison(op, operand)


def _length_rule(value: Any) -> Comparison:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Comparison("==", value)
    rule = comparison(value) if isinstance(value, str) else None
    if rule is None or not (isinstance(rule.operand, int) and not isinstance(rule.operand, bool)):
        raise ValueError(f"len must be a count or a comparison such as '> 0', not {value!r}")
    return rule


def check_json_expectation(path: str, want: Any) -> None:
    """Raise ValueError when ``path: want`` is not a valid ``expect.json`` entry."""
    parse_path(path)
    if isinstance(want, dict) and len(want) == 1 and "len" in want:
        _length_rule(want["len"])
    elif isinstance(want, dict) and len(want) == 1 and "exists" in want:
        if not isinstance(want["exists"], bool):
            raise ValueError(f"{path}: exists must be true or false")
    elif isinstance(want, str):
        comparison(want)


def judge_value(path: str, found: bool, value: Any, want: Any) -> str | None:
    """Why ``value`` at ``path`` fails ``want``, or None when it passes."""
    if isinstance(want, dict) and len(want) == 1 and "exists" in want:
        if want["exists"] and not found:
            return f"{path} missing, expected to exist"
        if not want["exists"] and found:
            return f"{path} is {show(value)}, expected absent"
        return None
    if not found:
        return f"{path} missing"
    if isinstance(want, dict) and len(want) == 1 and "len" in want:
        rule = _length_rule(want["len"])
        if not isinstance(value, list | dict | str):
            return f"{path} is {show(value)}, which has no length"
        return (
            None if rule.holds(len(value)) else f"{path} has length {len(value)}, expected {rule}"
        )
    compare = comparison(want) if isinstance(want, str) else None
    if compare is not None:
        return None if compare.holds(value) else f"{path} is {show(value)}, expected {compare}"
    return None if json_equal(value, want) else f"{path} is {show(value)}, expected {show(want)}"


class HttpExpect(StrictModel):
    """What a healthy HTTP answer looks like."""

    status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200])
    max_latency: Duration | None = None
    body_contains: str | None = None
    body_not_contains: str | None = None
    body_regex: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # header name → regex searched
    json_: dict[str, Any] = Field(default_factory=dict, alias="json")

    @field_validator("json_")
    @classmethod
    def _valid_json(cls, expected: dict[str, Any]) -> dict[str, Any]:
        for path, want in expected.items():
            check_json_expectation(path, want)
        return expected

    @field_validator("body_regex")
    @classmethod
    def _valid_body_regex(cls, text: str | None) -> str | None:
        return None if text is None else _valid_regex(text)

    @field_validator("headers")
    @classmethod
    def _valid_header_regexes(cls, headers: dict[str, str]) -> dict[str, str]:
        for text in headers.values():
            _valid_regex(text)
        return headers

    @property
    def needs_body(self) -> bool:
        """Whether judging needs the body at all."""
        return bool(
            self.body_contains is not None
            or self.body_not_contains is not None
            or self.body_regex is not None
            or self.json_
        )


def judge_status(status: int, accepted: Sequence[int]) -> Verdict:
    """http_status unless ``status`` is one of the ``accepted`` codes."""
    if status in accepted:
        return None, ""
    wanted = " or ".join(map(str, accepted))
    return Reason.HTTP_STATUS, f"status {status}, expected {wanted}"


def judge_headers(headers: Mapping[str, str], expect: HttpExpect) -> Verdict:
    """header_mismatch naming the first header missing or not matching its expression."""
    for name, regex in expect.headers.items():
        value = headers.get(name)
        if value is None:
            return Reason.HEADER_MISMATCH, f"header {name} missing"
        if not pattern(regex).search(value):
            return Reason.HEADER_MISMATCH, f"header {name} is {show(value)}, not matching {regex!r}"
    return None, ""


def judge_body(text: str, body: bytes, expect: HttpExpect) -> Verdict:
    """body_mismatch or json_mismatch naming the first assertion that fails."""
    if expect.body_contains is not None and expect.body_contains not in text:
        return Reason.BODY_MISMATCH, f"body does not contain {show(expect.body_contains)}"
    if expect.body_not_contains is not None and expect.body_not_contains in text:
        return Reason.BODY_MISMATCH, f"body contains {show(expect.body_not_contains)}"
    if expect.body_regex is not None and not pattern(expect.body_regex).search(text):
        return Reason.BODY_MISMATCH, f"body does not match {expect.body_regex!r}"
    if expect.json_:
        return judge_json(body, expect.json_)
    return None, ""


def judge_json(body: bytes, expected: Mapping[str, Any]) -> Verdict:
    """Check each ``path: expectation`` against the decoded body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return Reason.JSON_MISMATCH, "body is not JSON"
    for path, want in expected.items():
        found, value = lookup(document, parse_path(path))
        why = judge_value(path, found, value, want)
        if why is not None:
            return Reason.JSON_MISMATCH, why
    return None, ""
