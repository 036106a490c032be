"""What a checks.yaml draws on besides its own text: ``${ENV}``, secret files, token files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from monitor.config.errors import Problems
from monitor.config.tokens import TokenFileError, read_token_lines
from monitor.config.yamlsource import Located, format_key

# `${NAME}` is replaced by the variable; `$${` writes a literal `${`; any other `${` is a mistake.
_ENV = re.compile(r"\$(\$)?\{(?:([A-Za-z_][A-Za-z0-9_]*)\})?")


def expand(doc: Located, problems: Problems) -> Any:
    """A copy of ``doc.value`` with ``${ENV}`` expanded and ``*_file`` paths made usable.

    Keys must be strings (``yes:`` or ``1:`` parse as other types); the rest are dropped
    after an error, so that validation does not report them a second time.
    """
    return _expand(doc.value, (), doc, problems)


def expand_at(doc: Located, key: tuple[str, ...], problems: Problems) -> Any:
    """``expand`` of the value at ``key`` alone (None when the file has no such key)."""
    value = doc.value
    for name in key:
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return _expand(value, key, doc, problems)


def _expand(value: Any, key: tuple[Any, ...], doc: Located, problems: Problems) -> Any:
    if isinstance(value, dict):
        copy: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                line, where = doc.line_of((*key, name)), format_key(key)
                text = f"key {name!r} must be a string (quote it)"
                problems.add_at(
                    doc.path, line, f"{doc.path}:{line}: {where + ': ' if where else ''}{text}"
                )
                continue
            copy[name] = _expand(item, (*key, name), doc, problems)
            # A webhook header's {file: path} is a secret file too.
            secret = name.endswith("_file") or (name == "file" and key[-2:-1] == ("headers",))
            if secret and isinstance(copy[name], str):
                copy[name] = _secret_file(copy[name], (*key, name), doc, problems)
        return copy
    if isinstance(value, list):
        return [_expand(item, (*key, i), doc, problems) for i, item in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _ENV.sub(lambda match: _variable(match, key, doc, problems), value)
    return value


def _variable(match: re.Match[str], key: tuple[Any, ...], doc: Located, problems: Problems) -> str:
    escaped, name = match.group(1), match.group(2)
    if escaped:
        return match.group(0)[1:]
    if name is None:
        problems.add(doc, key, "'${' must start a variable such as ${NAME} (write $${ for '${')")
        return ""
    if name not in os.environ:
        problems.add(doc, key, f"environment variable {name} is not set")
        return ""
    return os.environ[name]


def _secret_file(value: str, key: tuple[Any, ...], doc: Located, problems: Problems) -> str:
    """Resolve a secret file beside the config; unreadable is an error now, not mid-outage."""
    path = _beside(doc, value)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        problems.add(doc, key, f"cannot read {path}: {exc.strerror or exc}")
    except ValueError:  # a NUL byte: no file can have that name
        problems.add(doc, key, "is not a usable file name")
    return str(path.absolute())  # still right if the daemon later changes its folder


def _beside(doc: Located, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else doc.path.parent / path


def tokens_file(raw: dict[str, Any], problems: Problems) -> None:
    """Read ``daemon.api_tokens_file`` now: a bad line is an error naming the file's own line.

    The path was resolved and found readable by ``expand``. Errors never quote the file: it
    holds secrets.
    """
    daemon = raw.get("daemon")
    name = daemon.get("api_tokens_file") if isinstance(daemon, dict) else None
    if not isinstance(name, str) or not Path(name).is_file():  # unreadable: reported already
        return
    try:
        read_token_lines(Path(name))
    except TokenFileError as exc:
        problems.add_at(exc.path, exc.line, str(exc))
