"""What a checks.yaml draws on besides its own text: ``${ENV}``, secret files, a customers CSV."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

from monitor.config.errors import Problems
from monitor.config.tokens import TokenFileError, read_token_lines
from monitor.config.yamlsource import MAX_BYTES, Located, format_key

CSV_COLUMNS = ("id", "name", "email", "language", "services", "timezone", "detail")
_REQUIRED_COLUMNS = CSV_COLUMNS[:3]
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
            if name.endswith("_file") and isinstance(copy[name], str):
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


def customer_rows(raw: dict[str, Any], doc: Located, problems: Problems) -> tuple[Located, Any]:
    """Customers written inline, or read from ``{file: customers.csv}`` beside the config.

    Returns the source the rows came from (to name file and line) and the rows.
    """
    section = raw.get("customers", [])
    if isinstance(section, list):
        return doc, section
    if not isinstance(section, dict):
        empty = ", not empty" if section is None else ""
        problems.add(doc, ("customers",), f"must be a list or {{file: customers.csv}}{empty}")
        return doc, []
    for name in section:
        if name != "file":
            problems.add(doc, ("customers", name), "unknown key")
    name = section.get("file")
    if not isinstance(name, str) or not name:
        message = "is required" if name is None else "must be a path"
        problems.add(doc, ("customers", "file"), message)
        return doc, []
    return _read_csv(_beside(doc, name), doc, problems)


def _read_csv(path: Path, doc: Located, problems: Problems) -> tuple[Located, list[Any]]:
    nothing: tuple[Located, list[Any]] = (doc, [])
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        problems.add(doc, ("customers", "file"), f"cannot read {path}: {exc.strerror or exc}")
        return nothing
    if len(data) > MAX_BYTES:
        problems.add(doc, ("customers", "file"), f"{path} is larger than {MAX_BYTES} bytes")
        return nothing
    try:
        text = data.decode("utf-8-sig")  # spreadsheets often start their CSV with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add_at(path, line, f"{path}:{line}: not UTF-8 text")
        return nothing
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _rows(reader, path, problems) or nothing
    except csv.Error as exc:
        problems.add_at(path, reader.line_num, f"{path}:{reader.line_num}: invalid CSV: {exc}")
        return nothing


def _rows(reader: Any, path: Path, problems: Problems) -> tuple[Located, list[Any]] | None:
    """Rows as customer mappings, each remembering its line; None if the header is unusable."""
    header = [column.strip() for column in next(reader, [])]
    # By position, never quoted: a file named by mistake (a token file) must not be printed.
    wrong = [f"unknown column {i}" for i, c in enumerate(header, 1) if c not in CSV_COLUMNS]
    wrong += [f"column {c!r} appears twice" for c in CSV_COLUMNS if header.count(c) > 1]
    wrong += [f"missing column {c!r}" for c in _REQUIRED_COLUMNS if c not in header]
    for message in wrong:
        problems.add_at(path, 1, f"{path}:1: {message} (columns: {', '.join(CSV_COLUMNS)})")
    if wrong:
        return None
    rows: list[Any] = []
    lines: dict[tuple[Any, ...], int] = {("customers",): 1}
    end = reader.line_num
    for record in reader:
        start, end = end + 1, reader.line_num
        if not record:
            continue  # a blank line
        key = ("customers", len(rows))
        lines[key] = start
        if len(record) > len(header):
            text = f"{path}:{start}: {format_key(key)}: more fields than columns"
            problems.add_at(path, start, text)
        row = {column: cell.strip() for column, cell in zip(header, record, strict=False)}
        row = {column: cell for column, cell in row.items() if cell}
        row["services"] = row.get("services", "").replace(";", " ").split()
        rows.append(row)
    return Located(path, {"customers": rows}, lines), rows
