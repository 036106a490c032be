"""The operator API's token file: ``name:token[:read|write]`` lines, read for daemon and CLI.

It is configuration both sides read (the daemon checks requests against it, the CLI sends
one of its tokens), so it lives here rather than in the web package. A token never appears
in an error message, not even a line of the file that fails to parse.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MIN_TOKEN_LENGTH = 20

# RFC 6750's b64token: what may follow "Bearer " in a header without quoting.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_SCOPES = {"write": True, "read": False}


@dataclass(frozen=True, slots=True)
class TokenLine:
    """One parsed line of a token file, secret included: for the CLI that sends it."""

    name: str
    secret: str
    write: bool


def digest(secret: str) -> bytes:
    """A token's SHA-256 digest: what is kept in memory and looked up, never the secret."""
    return hashlib.sha256(secret.encode("ascii")).digest()


class TokenFileError(ValueError):
    """A token file that cannot be used: ``<path>:<line>: <message>``, never its content."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


def read_token_lines(path: Path) -> list[TokenLine]:
    """Every token of a token file, in file order; TokenFileError naming the line if bad."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TokenFileError(path, 1, f"cannot read ({exc.strerror or exc})") from None
    lines: list[TokenLine] = []
    seen: dict[bytes, int] = {}
    for number, data in enumerate(raw.splitlines(), start=1):
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise TokenFileError(path, number, "not UTF-8 text") from None
        if not text or text.startswith("#"):
            continue
        try:
            entry = _parse_line(text)
        except ValueError as exc:
            raise TokenFileError(path, number, str(exc)) from None
        key = digest(entry.secret)
        if key in seen:
            raise TokenFileError(path, number, f"same token as line {seen[key]}")
        seen[key] = number
        lines.append(entry)
    return lines


def _parse_line(text: str) -> TokenLine:
    """One ``name:token[:read|write]`` line; the message never quotes the token."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError("expected name:token or name:token:read")
    name, secret = parts[0].strip(), parts[1].strip()
    scope = parts[2].strip() if len(parts) == 3 else "write"
    if not _NAME.fullmatch(name):
        raise ValueError("the name must be 1 to 64 of A-Z a-z 0-9 _ . @ -")
    if scope not in _SCOPES:
        # Not quoted: a token with a ':' in it would put part of the secret here.
        raise ValueError("the scope must be read or write (a token has no ':')")
    # Nothing of the line is quoted, not even the name: with name and token swapped by
    # mistake, the "name" is the secret.
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError("the token is shorter than 20 characters")
    if not TOKEN_PATTERN.fullmatch(secret):
        raise ValueError("the token has characters outside A-Z a-z 0-9 - . _ ~ + / =")
    return TokenLine(name, secret, _SCOPES[scope])
