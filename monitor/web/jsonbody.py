"""Request bodies as JSON objects: invalid JSON, huge numbers and bad Unicode are a 400.

``json.loads`` alone turns a 5,000-digit number into a ValueError, and lets a lone surrogate
(``"\\ud800"``) through to fail when written; both were 500s (issue 17).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from monitor.web.auth import json_error

MAX_NUMBER_DIGITS = 32  # no field takes a longer number


async def read_object(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """The request's JSON object, with no keys outside ``allowed``; a JSON 400 otherwise."""
    try:
        data = json.loads(
            await request.read(), parse_int=_number, parse_float=_number, parse_constant=_refuse
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # [[[[… nested too deep
        raise json_error(web.HTTPBadRequest, "the body is not valid JSON") from None
    except ValueError as exc:  # from _number or _refuse
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    if not _encodable(data):
        raise json_error(
            web.HTTPBadRequest, "the body has invalid Unicode (a lone surrogate such as \\ud800)"
        )
    if not isinstance(data, dict):
        raise json_error(web.HTTPBadRequest, "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise json_error(web.HTTPBadRequest, f"unknown key {unknown[0][:40]!r}")
    return data


def _number(text: str) -> float:
    """A JSON number of sane length; ValueError otherwise (int() of 5,000 digits raises late)."""
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number has more than {MAX_NUMBER_DIGITS} characters")
    return float(text) if any(c in text for c in ".eE") else int(text)


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _encodable(value: Any) -> bool:
    """True when every string in ``value`` is valid Unicode (writable as UTF-8)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
