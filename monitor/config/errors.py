"""Config error wording: every problem becomes one ``file:line: key.path: message`` line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from monitor.config.suggest import advise
from monitor.config.yamlsource import Located
from monitor.core.fields import ID_PATTERN
from notifiers.message import EMAIL_PATTERN

MAX_ERRORS = 100  # past this, more lines help nobody: the file needs a systematic fix

_FIXED = {
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "path_type": "must be a path",
    "union_tag_not_found": "is required",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "too_long": ("max_length", "must have at most {} items"),
    "string_too_long": ("max_length", "must be at most {} characters"),
}
_HINTS = {"password": "unknown key (put the secret in a file and name it with password_file:)"}


class ConfigError(Exception):
    """A checks.yaml that cannot be used; ``errors`` holds one ``file:line: key: message`` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class Problems:
    """The error lines found so far; reported sorted by file and line, at most ``MAX_ERRORS``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.found: list[tuple[bool, str, int, str]] = []  # (other file?, file, line, text)
        self.keys: set[tuple[Path, tuple[Any, ...]]] = set()  # keys that have an error already

    def __bool__(self) -> bool:
        return bool(self.found)

    def add(self, doc: Located, key: tuple[Any, ...], message: str) -> None:
        """Record ``message`` about ``key`` of ``doc``."""
        self.keys.add((doc.path, key))
        self.add_at(doc.path, doc.line_of(key), doc.where(key, message))

    def add_at(self, path: Path, line: int, text: str) -> None:
        """Record an already formatted error line about ``line`` of ``path``."""
        self.found.append((path != self.path, str(path), line, text))

    def add_validation(
        self,
        exc: ValidationError,
        doc: Located,
        prefix: tuple[Any, ...],
        data: Any,
        model: type[BaseModel] | None = None,
    ) -> None:
        """Record pydantic's errors for ``data`` (a ``model``), found at ``prefix`` in ``doc``."""
        for key, message in describe(exc, data, model, prefix):
            if (doc.path, (*prefix, *key)) not in self.keys:  # e.g. a missing ${ENV}: said once
                self.add(doc, (*prefix, *key), message)

    def check(self) -> None:
        """Raise ConfigError if anything was recorded: the main file first, top to bottom."""
        if not self.found:
            return
        ordered = [text for *_, text in sorted(self.found, key=lambda found: found[:3])]
        hidden = len(ordered) - MAX_ERRORS
        more = [f"{self.path}: {hidden} more errors not shown"] if hidden > 0 else []
        raise ConfigError(ordered[:MAX_ERRORS] + more)


def describe(
    exc: ValidationError,
    data: Any,
    model: type[BaseModel] | None = None,
    prefix: tuple[Any, ...] = (),
) -> list[tuple[tuple[Any, ...], str]]:
    """One ``(key path, message)`` per faulty key; an unknown key names the nearest allowed one."""
    grouped: dict[tuple[Any, ...], list[str]] = {}
    empty: set[tuple[Any, ...]] = set()
    for error in exc.errors(include_url=False):
        key, of_key = _file_key(error, data)
        message = _message(error)
        if message == "unknown key":
            message += advise(model, key, prefix)
        if of_key:
            message = f"unknown key: {message}"
        if error["type"] != "missing" and error.get("input", 0) is None:
            empty.add(key)
        found = grouped.setdefault(key, [])
        if message not in found:
            found.append(message)
    return [
        (key, _either(messages) + (", not empty" if key in empty else ""))
        for key, messages in grouped.items()
    ]


def _file_key(error: ErrorDetails, data: Any) -> tuple[tuple[Any, ...], bool]:
    """The key path as written in the file, and whether the error is about a mapping key.

    pydantic's ``loc`` also names union members (``literal['any','all']``, ``int``);
    walking the data tells those apart from the file's own keys.
    """
    loc, of_key, current = error["loc"], False, data
    key: list[Any] = []
    for i, part in enumerate(loc):
        if part == "[key]":
            of_key = True
        elif _has(current, part):
            key.append(part)
            current = current[part]
        elif i == len(loc) - 1 and error["type"] == "missing":
            key.append(part)
    return tuple(key), of_key


def _has(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


def _message(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden" and error["loc"] and error["loc"][-1] in _HINTS:
        return _HINTS[str(error["loc"][-1])]
    if kind in _FIXED:
        return _FIXED[kind]
    if kind in _BOUNDS:
        name, template = _BOUNDS[kind]
        return template.format(ctx.get(name))
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length")
        unit = "items" if kind == "too_short" else "characters"
        return "must not be empty" if least == 1 else f"must have at least {least} {unit}"
    if kind in ("literal_error", "enum"):
        return f"must be one of {_choices(str(ctx.get('expected', '')))}"
    if kind == "union_tag_invalid":
        return f"must be one of {_choices(str(ctx.get('expected_tags', '')))}"
    if kind == "string_pattern_mismatch":
        return _pattern_message(str(ctx.get("pattern")), error.get("input"))
    if kind in ("value_error", "assertion_error"):
        return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return error["msg"]


def _pattern_message(pattern: str, value: Any) -> str:
    if pattern == EMAIL_PATTERN:
        return "must be an email address"
    if pattern != ID_PATTERN:
        return f"must match {pattern}"
    if isinstance(value, str) and len(value) > 64:
        return "must be at most 64 characters"
    if isinstance(value, str) and value[:1] in ("_", ".", "-"):
        return "must start with a lowercase letter or a digit"
    return "must be a lowercase id (a-z, 0-9, _ . -)"


def _choices(expected: str) -> str:
    """``'fr' or 'en'`` (pydantic's wording) → ``fr | en``."""
    items = re.findall(r"'([^']*)'", expected) or re.split(r", | or ", expected)
    return " | ".join(items)


def _either(messages: list[str]) -> str:
    """Collapse the messages of a union's alternatives into one."""
    if len(messages) == 1:
        return messages[0]
    if all(m.startswith("must be ") for m in messages):
        return "must be " + ", or ".join(m.removeprefix("must be ") for m in messages)
    return "; or ".join(messages)
