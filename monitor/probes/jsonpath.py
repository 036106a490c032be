"""A tiny JSON path evaluator for ``$.a.b[0].c``-style expectations: pure, no dependencies.

Grammar: ``$`` followed by any number of steps, each ``.name``, ``['name']``, ``["name"]`` or
``[N]`` with N a non-negative integer. No wildcards, slices or filters: an expectation names
one value, and anything fancier belongs in a dedicated probe.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

Path = tuple[str | int, ...]

_NAME_STOP = frozenset(".[]'\" \t\r\n")


@lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """Turn ``$.a.b[0]`` into ``("a", "b", 0)``; raise ValueError on bad syntax."""
    if not text.startswith("$"):
        raise ValueError(f"JSON path {text!r} must start with '$'")
    steps: list[str | int] = []
    i, end = 1, len(text)
    while i < end:
        char = text[i]
        if char == ".":
            start = i = i + 1
            while i < end and text[i] not in _NAME_STOP:
                i += 1
            if i == start:
                raise ValueError(f"JSON path {text!r}: empty name at position {start}")
            steps.append(text[start:i])
        elif char == "[":
            close = text.find("]", i)
            if close < 0:
                raise ValueError(f"JSON path {text!r}: unclosed '[' at position {i}")
            steps.append(_bracket(text, text[i + 1 : close], i))
            i = close + 1
        else:
            raise ValueError(f"JSON path {text!r}: unexpected {char!r} at position {i}")
    return tuple(steps)


def _bracket(text: str, inner: str, at: int) -> str | int:
    """Read the inside of one ``[...]`` step: a quoted key or an index."""
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return inner[1:-1]
    if inner.isdigit() and inner.isascii():
        return int(inner)
    raise ValueError(
        f"JSON path {text!r}: [{inner}] at position {at} is neither an index nor a quoted key"
    )


def lookup(document: Any, path: Path) -> tuple[bool, Any]:
    """Follow ``path`` into a decoded JSON document; return ``(found, value)``."""
    node = document
    for step in path:
        if isinstance(step, str):
            if not isinstance(node, dict) or step not in node:
                return False, None
            node = node[step]
        else:
            if not isinstance(node, list) or step >= len(node):
                return False, None
            node = node[step]
    return True, node


def json_equal(seen: Any, expected: Any) -> bool:
    """Compare as JSON values: ``true`` is not ``1``, but ``1`` equals ``1.0``."""
    # Python says True == 1, which would let a boolean flag pass a numeric expectation.
    if isinstance(seen, bool) or isinstance(expected, bool):
        return type(seen) is type(expected) and seen == expected
    if isinstance(seen, dict) and isinstance(expected, dict):
        return seen.keys() == expected.keys() and all(
            json_equal(value, expected[key]) for key, value in seen.items()
        )
    if isinstance(seen, list) and isinstance(expected, list):
        return len(seen) == len(expected) and all(map(json_equal, seen, expected))
    return bool(seen == expected)


def show(value: Any, limit: int = 60) -> str:
    """Render a JSON value for a one-line detail: strings quoted, long values cut."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
