"""Files a check names, read once when checks.yaml is loaded (paths relative to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

_SECRET_LIMIT = 64 * 1024
_BODY_LIMIT = 16 * 1024 * 1024


def _readable(path: str) -> str:
    """Fail validation at the file's own key when it cannot be read."""
    _read(path, _BODY_LIMIT)
    return path


ReadableFile = Annotated[str, AfterValidator(_readable)]
"""A ``*_file`` setting: a path (relative to checks.yaml) that must be readable at load."""


def read_secret(path: str) -> str:
    """The secret in ``path``, without its trailing newline; the error never shows it."""
    try:
        data = _read(path, _SECRET_LIMIT).decode("utf-8").strip("\r\n")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not data or any(ch in data for ch in "\r\n\0"):
        raise ValueError(f"{path} must hold one non-empty line")
    return data


def read_body(path: str) -> bytes:
    """A request body kept in a file, up to 16 MiB."""
    return _read(path, _BODY_LIMIT)


def _read(path: str, limit: int) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data
